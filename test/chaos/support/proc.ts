/** Reading a process's memory and handles from /proc (Linux, which is what CI runs). */
import { readFileSync, readdirSync } from "node:fs";

function statusField(pid: number, field: "VmRSS" | "VmHWM"): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null; // gone
  }
}

/** Current resident set size in MiB, null if the process is gone. */
export function rssMiB(pid: number): number | null {
  return statusField(pid, "VmRSS");
}

/** Peak resident set size (high-water mark) in MiB, null if the process is gone. */
export function peakRssMiB(pid: number): number | null {
  return statusField(pid, "VmHWM");
}

/** Open file descriptors (sockets, files, pipes), null if the process is gone. */
export function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Samples RSS of some processes every `everyMs` and keeps the peak of each. */
export class RssSampler {
  private readonly peaks = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: () => Record<string, number | undefined>,
    everyMs = 250,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(): void {
    for (const [name, pid] of Object.entries(this.pids())) {
      if (pid === undefined) continue;
      const v = rssMiB(pid);
      if (v !== null && v > (this.peaks.get(name) ?? 0)) this.peaks.set(name, v);
    }
  }

  /** Peak RSS per process name, MiB. */
  stop(): Record<string, number> {
    clearInterval(this.timer);
    this.sample();
    return Object.fromEntries(this.peaks);
  }
}
