/** `naq bench`: measure the configured server or cluster with naq itself, on a throwaway queue. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { parseCount, parseDurationOption, parsePositive } from "../parse.js";
import { examples } from "../program.js";

export function benchCommand(): Command {
  return new Command("bench")
    .description(
      "measure this server or cluster: enqueue throughput (one at a time and bulk), processing throughput and enqueue-to-completed latency, on a throwaway queue removed afterwards",
    )
    .addOption(new Option("-n, --jobs <n>", "jobs enqueued in bulk, then processed; the one-at-a-time phase enqueues at most 1000").argParser((v) => parsePositive(v, "--jobs")).default(5_000))
    .addOption(new Option("-C, --concurrency <n>", "concurrency of the benchmark's worker").argParser((v) => parsePositive(v, "--concurrency")).default(100))
    .addOption(new Option("--payload-size <bytes>", "size of each job's payload as JSON, a string; 0 for null").argParser((v) => parseCount(v, "--payload-size")).default(100))
    .addOption(new Option("--rate <jobs/s>", "enqueue rate of the latency phase").argParser((v) => parsePositive(v, "--rate")).default(200))
    .addOption(new Option("--duration <duration>", "length of the latency phase").argParser((v) => parseDurationOption(v, "--duration")).default(5_000, "5s"))
    .option("-Q, --queue <queue>", "queue to use instead of a new naq-bench-<random>; refused if naq knows it already: jobs, consumer, workers")
    .addHelpText(
      "after",
      `${examples(
        "naq bench",
        "naq bench -s nats://nats-1:4222,nats://nats-2:4222 --creds ops.creds --jobs 20000 --concurrency 200",
        "naq bench --payload-size 4096 --rate 1000 --duration 30s",
        "naq bench --jobs 1000 --json | jq .process.jobsPerSec",
      )}
Runs in this process: a producer (naq's Queue) and a worker (naq's Worker, a no-op task whose
result is stored as usual) on a new queue of the configured namespace. Afterwards, also after
an error or Ctrl-C, it removes the queue's consumer and jobs, its events, its result records
and the worker's heartbeat; your other queues are not touched.
`,
    )
    .action(act(async () => (await import("../actions/bench.js")).bench));
}
