import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    // `npm run bench` sets BENCH=1 to run the benchmarks instead of the tests.
    include: process.env.BENCH ? ["test/bench/**/*.bench.ts"] : ["workers/**/*.test.ts", "scripts/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Two cores: the workerd and PyTorch processes the integration tests start need the other.
    maxWorkers: 1,
  },
});
