/** Option parsers shared by commands: each rejects bad input with one clear line (exit 2). */
import { InvalidArgumentError } from "commander";

export function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${flag} must be a whole number >= 0, got "${value}"`);
  return Number(value);
}
