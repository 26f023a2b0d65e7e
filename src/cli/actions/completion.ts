/** Action of `naq completion`. */
import { completionScript, type Shell } from "../generate/completion.js";
import { describeTree } from "../generate/tree.js";
import type { Action } from "../act.js";
import { buildProgram } from "../program.js";

export const completion: Action<object> = async (ctx, args) => {
  ctx.out.stdout.write(completionScript(describeTree(buildProgram()), String(args[0]) as Shell));
};
