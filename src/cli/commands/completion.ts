/** `naq completion <shell>`: print a shell completion script. */
import { Argument, Command } from "commander";
import { act } from "../act.js";
import { examples } from "../program.js";

export function completionCommand(): Command {
  return new Command("completion")
    .description("print a completion script for bash, zsh or fish (also shipped in completions/)")
    .addArgument(new Argument("<shell>", "the shell").choices(["bash", "zsh", "fish"]))
    .addHelpText(
      "after",
      examples(
        "source <(naq completion bash)",
        "naq completion zsh > \"${fpath[1]}/_naq\"",
        "naq completion fish > ~/.config/fish/completions/naq.fish",
      ),
    )
    .action(act(async () => (await import("../actions/completion.js")).completion, { loadConfig: false }));
}
