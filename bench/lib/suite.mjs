/**
 * The suite as a library (run.mjs is its command line; a later `naq bench` can call it
 * with an operator's NATS URL):
 *
 *   const results = await runSuite({ natsUrl, redisUrl, quick: true, log: console.error });
 *   console.log(formatTable(results));
 *
 * For every case and run, each system runs in turn (the order rotates between runs so
 * that drift in machine load does not always favour the same one); each figure is then
 * min / median / max over the runs, and ratios are medians: naq / raw, naq / BullMQ.
 */
import { suiteCases } from "../scenarios/index.mjs";
import * as scheduler from "../scenarios/scheduler.mjs";
import * as addBulk from "../scenarios/add-bulk.mjs";
import * as processJobs from "../scenarios/process.mjs";
import { bullmqAvailable } from "./harness.mjs";
import { ratio, summarize } from "./stats.mjs";
import { SYSTEMS } from "./systems.mjs";

export const SYSTEM_LABELS = { naq: "naq", raw: "raw nats.js", bullmq: "BullMQ" };

/** Whether case `id` is chosen by --only: an exact id picks that case alone; anything else is a prefix. */
function selected(id, only, ids) {
  if (!only || only.length === 0) return true;
  return only.some((o) => id === o || (!ids.includes(o) && id.startsWith(o)));
}

function checkTarget(r, [op, x]) {
  if (!Number.isFinite(r)) return undefined;
  return op === ">=" ? r >= x : r <= x;
}

/**
 * Runs the selected cases. Options: natsUrl (required), redisUrl (BullMQ is skipped
 * without one), natsPid / redisPid (when the servers are local: their CPU use is measured), quick, smoke, only (case ids or prefixes), runs (default 3),
 * systems (default all three), log (progress lines), scheduler (run the hook, default true),
 * warmup (one small unmeasured round per system first, default true).
 */
export async function runSuite(opts) {
  const { natsUrl, redisUrl, natsPid, redisPid, quick = false, smoke = false, only, runs, log = () => undefined } = opts;
  if (!natsUrl) throw new Error("runSuite needs natsUrl");
  let systems = opts.systems ?? SYSTEMS;
  const notes = [];
  const bull = await bullmqAvailable(redisUrl);
  if (systems.includes("bullmq") && !bull.ok) {
    systems = systems.filter((s) => s !== "bullmq");
    notes.push(`BullMQ skipped: ${bull.why}`);
    log(`BullMQ skipped: ${bull.why}`);
  }
  const cases = [];
  const started = Date.now();
  const all = suiteCases({ quick, smoke });
  const ids = [...all.map((c) => c.id), "scheduler"];
  const chosen = all.filter((c) => selected(c.id, only, ids));
  if (!smoke && opts.warmup !== false && chosen.length > 0) {
    // Load every module and let the JIT see the hot paths once, so the first measured run
    // of whichever system goes first is not the only cold one.
    log(`- warmup (${systems.join(", ")}; not measured)`);
    for (const s of systems) {
      try {
        await addBulk[s]({ natsUrl, redisUrl, n: 500 });
        await processJobs[s]({ natsUrl, redisUrl, n: 500, concurrency: 10, mode: "prefilled" });
      } catch (err) {
        log(`  ! warmup ${s}: ${err?.message ?? err}`);
      }
    }
  }
  for (const c of chosen) {
    const skip = c.skip?.();
    if (skip) {
      notes.push(`${c.id} skipped: ${skip}`);
      log(`- ${c.id}: skipped (${skip})`);
      cases.push({ id: c.id, title: c.title, params: c.params, skipped: skip, metrics: c.metrics.map((m) => ({ ...m, systems: {} })) });
      continue;
    }
    const fns = c.systems ?? Object.fromEntries(SYSTEMS.map((s) => [s, c.module[s]]));
    const order = systems.filter((s) => fns[s]);
    // A case's own count wins, then --runs, then the case's default (target rows: 5 in the full suite), then 3.
    const nRuns = c.runs ?? runs ?? c.defaultRuns ?? 3;
    const raw = Object.fromEntries(order.map((s) => [s, []]));
    const errors = [];
    const t0 = Date.now();
    log(`- ${c.id}: ${c.title} (${nRuns} run${nRuns === 1 ? "" : "s"} × ${order.join(", ")})`);
    for (let r = 0; r < nRuns; r++) {
      const rotated = order.map((_, i) => order[(i + r) % order.length]);
      for (const s of rotated) {
        try {
          const out = await fns[s]({ natsUrl, redisUrl, natsPid, redisPid, ...c.params });
          raw[s].push(typeof out === "number" ? { value: out } : out);
        } catch (err) {
          const msg = `${c.id} ${s} run ${r + 1}: ${err?.message ?? err}`;
          errors.push(msg);
          log(`  ! ${msg}`);
        }
      }
    }
    const metrics = c.metrics.map((m) => {
      const bySystem = {};
      for (const s of order) bySystem[s] = summarize(raw[s].map((o) => o[m.key]));
      return { ...m, systems: bySystem };
    });
    cases.push({ id: c.id, title: c.title, params: c.params, runs: nRuns, borrow: c.borrow, seconds: (Date.now() - t0) / 1000, metrics, errors });
    log(`  ${metrics.map((m) => `${m.key}: ${order.map((s) => `${s} ${fmt(m.systems[s].median)}`).join(", ")}`).join("; ")} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }

  // Ratios and targets (a case may borrow the raw/BullMQ figures of another, e.g. the CLI bulk row).
  for (const c of cases) {
    for (const m of c.metrics) {
      const from = c.borrow ? cases.find((x) => x.id === c.borrow)?.metrics.find((x) => x.key === m.key) : undefined;
      const ref = (s) => m.systems[s] ?? from?.systems[s];
      const naq = m.systems.naq?.median;
      m.ratios = { raw: ratio(naq, ref("raw")?.median), bullmq: ratio(naq, ref("bullmq")?.median) };
      m.borrowed = from ? { raw: from.systems.raw, bullmq: from.systems.bullmq } : undefined;
      if (m.targets) {
        m.pass = {};
        for (const [s, t] of Object.entries(m.targets)) m.pass[s] = checkTarget(m.ratios[s], t);
      }
    }
  }

  let schedulerResult;
  if (!smoke && opts.scheduler !== false && selected("scheduler", only, ids)) {
    if (scheduler.available()) {
      log("- scheduler: bench/scheduler-tick.mjs");
      try {
        schedulerResult = await scheduler.run({ natsUrl, quick, runs });
        log(`  done (${schedulerResult.seconds?.toFixed(1)} s)`);
      } catch (err) {
        schedulerResult = { error: err?.message ?? String(err) };
        log(`  ! scheduler: ${schedulerResult.error}`);
      }
    } else {
      schedulerResult = { skipped: "bench/scheduler-tick.mjs does not exist yet (HOOK: see bench/scenarios/scheduler.mjs)" };
      notes.push(`scheduler tick: ${schedulerResult.skipped}`);
      log(`- scheduler: ${schedulerResult.skipped}`);
    }
  }
  return { quick, smoke, runs: runs ?? null, systems, cases, scheduler: schedulerResult, notes, seconds: (Date.now() - started) / 1000 };
}

// ---------------------------------------------------------------------------------------
// formatting

export function fmt(x) {
  if (x === undefined || x === null || !Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString("en");
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function cell(sum, borrowed) {
  if (!sum || !Number.isFinite(sum.median)) return "–";
  const range = sum.runs.length > 1 ? ` (${fmt(sum.min)}–${fmt(sum.max)})` : "";
  return `${borrowed ? "↑ " : ""}${fmt(sum.median)}${range}`;
}

function ratioCell(m, s) {
  const r = m.ratios?.[s];
  if (!Number.isFinite(r)) return "–";
  const t = m.targets?.[s];
  const mark = t ? (m.pass[s] ? " ✅" : " ❌") : "";
  return `${r.toFixed(2)}${mark}`;
}

function targetText(m) {
  if (!m.targets) return "";
  return Object.entries(m.targets)
    .map(([s, [op, x]]) => `naq/${SYSTEM_LABELS[s] === "raw nats.js" ? "raw" : SYSTEM_LABELS[s]} ${op === ">=" ? "≥" : "≤"} ${x}`)
    .join(", ");
}

/** The markdown table: median (min–max) per system, ratios of medians, target marks. */
export function formatTable(results) {
  const lines = [
    "| scenario | unit | naq | raw nats.js | BullMQ | naq/raw | naq/BullMQ | target |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const c of results.cases) {
    for (const m of c.metrics) {
      if (m.hidden) continue;
      const better = m.better === "higher" ? "↑" : "↓";
      if (c.skipped) {
        lines.push(`| ${m.label} | ${m.unit} | skipped: ${c.skipped} | | | | | |`);
        continue;
      }
      const err = `${c.runs < 3 ? ` [${c.runs} run${c.runs === 1 ? "" : "s"}]` : ""}${c.errors?.length ? ` ⚠ ${c.errors.length} error(s)` : ""}`;
      lines.push(
        `| ${m.label}${err} | ${m.unit} ${better} | ${cell(m.systems.naq)} | ${cell(m.systems.raw ?? m.borrowed?.raw, !m.systems.raw && m.borrowed?.raw)} | ${cell(m.systems.bullmq ?? m.borrowed?.bullmq, !m.systems.bullmq && m.borrowed?.bullmq)} | ${ratioCell(m, "raw")} | ${ratioCell(m, "bullmq")} | ${targetText(m)} |`,
      );
    }
  }
  return lines.join("\n");
}

/** The scheduler hook's result: a small table of its own (naq only: loaded vs empty). */
export function formatScheduler(s) {
  if (!s) return "";
  if (s.skipped) return `scheduler tick: skipped — ${s.skipped}`;
  if (s.error) return `scheduler tick: error — ${s.error}`;
  const r = s.result;
  if (r && typeof r === "object" && (r.busy || r.idle)) {
    const entries = r.entries !== undefined ? r.entries.toLocaleString("en") : "?";
    const lines = [
      `| scheduler tick (bench/scheduler-tick.mjs, median of ${r.rounds ?? "?"} rounds) | unit | no entries | ${entries} far-future entries | loaded/empty |`,
      "| --- | --- | ---: | ---: | ---: |",
    ];
    const row = (label, x) => x && lines.push(`| ${label} | ms ↓ | ${fmt(x.empty)} | ${fmt(x.loaded)} | ${(x.loaded / x.empty).toFixed(2)} |`);
    row(`tick firing ${r.duePerRound ?? "?"} due jobs`, r.busy);
    row("tick with nothing due", r.idle);
    row("(contrast: wildcard key listing of one slot)", r.listing);
    if (r.allFired === false) lines.push("\n⚠ scheduler-tick: not every due job fired");
    return lines.join("\n");
  }
  return `scheduler tick:\n${typeof r === "string" ? r : JSON.stringify(r, null, 2)}`;
}

/** Pass/fail per target, for a summary line. */
export function targetSummary(results) {
  const out = [];
  for (const c of results.cases) {
    for (const m of c.metrics) {
      if (!m.targets || c.skipped) continue;
      for (const [s, t] of Object.entries(m.targets)) {
        out.push({ metric: m.label, against: s, ratio: m.ratios?.[s], target: t, pass: m.pass?.[s] });
      }
    }
  }
  return out;
}
