// The floor for one CLI enqueue: a bare nats.js v3 process that connects, publishes one
// JetStream message (with a Msg-Id, as naq does) and exits.
//   node bench/oneshot/raw-publish.mjs <nats-url> <subject>
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";

const [url, subject] = process.argv.slice(2);
const nc = await connect({ servers: [url], noAsyncTraces: true });
const id = `${Date.now()}-${process.pid}`;
const ack = await jetstream(nc).publish(subject, JSON.stringify({ task: "noop", payload: {}, id }), { msgID: id });
process.stdout.write(`${ack.seq}\n`);
await nc.close();
