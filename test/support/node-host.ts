/** The Node GPU host (scripts/serve-node.ts) as a child process on a free port. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./paths";
import { TEST_API_KEY } from "./worker";

export interface RunningNodeHost {
  url: string;
  close(): void;
}

/** Build and start the Node host with TEST_API_KEY as its key; resolves once it listens. */
export function startNodeHost(): Promise<RunningNodeHost> {
  const host = spawn(process.execPath, [join(ROOT, "scripts", "serve-node.ts"), "--port", "0"], {
    cwd: ROOT,
    env: { ...process.env, API_KEYS: TEST_API_KEY },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    host.stdout!.on("data", (chunk: Buffer) => {
      output += chunk;
      const ready = output.match(/node host: (http:\/\/127\.0\.0\.1:\d+)/);
      if (ready) resolve({ url: ready[1]!, close: () => host.kill() });
    });
    host.on("exit", (code) => reject(new Error(`the node host exited (${code}): ${output}`)));
  });
}
