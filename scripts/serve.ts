/**
 * `npm run serve`: the built Worker in plain `workerd serve`, without wrangler dev's proxy and file
 * watcher, on 127.0.0.1:$PORT (default 8787). Same bindings and local state as `npm start`: the
 * vars of wrangler.toml, the secrets of .dev.vars, the Durable Objects wrangler dev keeps in
 * .wrangler/state/v3/do (a classifier taught under one is there under the other; run one at a
 * time), and the MODELS bucket read from models/ (the files `npm start` uploads to local R2).
 *
 *   npm run serve                       # builds the bundle, then serves until Ctrl-C
 *   PORT=9000 npm run serve -- --state /tmp/cnn-edge-state
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker } from "./local-worker.ts";
import { ROOT } from "./model-repository.ts";
import { startPlainWorkerd } from "./workerd/serve.ts";

const { values } = parseArgs({ options: { state: { type: "string", default: join(ROOT, ".wrangler", "state") } } });
const port = Number(process.env.PORT ?? 8787);
if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`PORT must be a TCP port, not ${process.env.PORT}`);

const bundle = join(ROOT, ".wrangler", "serve", "build");
mkdirSync(bundle, { recursive: true });
buildWorker(bundle);
// wrangler.toml's vars with .dev.vars' secrets over them, as wrangler dev reads them.
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
const secrets = Object.fromEntries(Object.entries(workerOptions.bindings ?? {}).filter(([, value]) => typeof value === "string")) as Record<string, string>;

const worker = await startPlainWorkerd({
  dir: bundle,
  stateDir: join(ROOT, ".wrangler", "serve"),
  durableObjectsDir: join(values.state, "v3", "do"),
  secrets,
  port,
});
console.log(`cnn-edge in plain workerd at ${worker.url} (pid ${worker.pid}); Durable Objects in ${join(values.state, "v3", "do")}; Ctrl-C stops it`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => void worker.dispose().then(() => process.exit(0)));
}
