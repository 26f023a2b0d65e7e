/** `naq doctor`: is this NATS server ready for naq, and how durable is it? */
import { Command } from "commander";
import { act } from "../act.js";
import { examples } from "../program.js";

export function doctorCommand(): Command {
  return new Command("doctor")
    .description("check the server, JetStream, naq's streams and buckets, and durability; exit 1 when something is wrong")
    .addHelpText("after", examples("naq doctor", "naq doctor --json | jq '.checks[] | select(.level != \"ok\")'"))
    .action(act(async () => (await import("../actions/doctor.js")).doctor));
}
