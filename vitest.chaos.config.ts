import { defineConfig } from "vitest/config";

// The chaos suite (test/chaos/, `npm run test:chaos`): real faults in real servers. One file
// at a time: scenarios measure memory and recovery time, and share two cores.
const long = process.env.NAQ_CHAOS_LONG === "1";

export default defineConfig({
  test: {
    include: ["test/chaos/**/*.chaos.ts"],
    testTimeout: long ? 30 * 60_000 : 5 * 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    passWithNoTests: true,
    maxWorkers: 1,
    reporters: ["default"],
  },
});
