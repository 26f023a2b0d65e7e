// BullMQ's one-shot enqueue: a process that connects to redis, adds one job and exits.
//   node bench/oneshot/bullmq-add.mjs <redis-url> <queue>
import { Queue } from "bullmq";
import { Redis } from "ioredis";

const [url, name] = process.argv.slice(2);
const connection = new Redis(url, { maxRetriesPerRequest: null });
const queue = new Queue(name, { connection });
const job = await queue.add("noop", {});
process.stdout.write(`${job.id}\n`);
await queue.close();
connection.disconnect();
