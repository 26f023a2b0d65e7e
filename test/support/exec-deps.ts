/**
 * ExecDeps for unit tests of the worker's job path (execute, RunningJobs, exec tasks):
 * everything a no-op (no record, no dependency, nothing skipped or cancelled) unless the
 * test overrides it.
 */
import type { ExecDeps } from "../../src/worker/execute.js";

export function fakeExecDeps(overrides: Partial<ExecDeps> = {}): ExecDeps {
  return {
    workerId: "w1",
    handlers: new Map(),
    writeRecord: async () => undefined,
    deadLetter: async () => undefined,
    getRecord: async () => undefined,
    jobExists: async () => false,
    skipped: async () => ({ waits: 0, released: 0 }),
    recordWait: async () => undefined,
    isCancelled: () => false,
    emit: () => undefined,
    ...overrides,
  };
}
