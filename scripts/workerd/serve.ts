/**
 * The built Worker (wrangler's deploy bundle) in plain `workerd serve`: no Miniflare, no dev proxy,
 * no file watcher, no static assets (on Cloudflare they are served before the Worker). Its
 * Durable Objects are SQLite files in `durableObjectsDir` (default `stateDir`; wrangler dev's
 * .wrangler/state/v3/do holds the same files, under the same namespace keys), its MODELS bucket a
 * stand-in over the repository's models/ folder (r2-folder.js), whose keys are the paths `npm
 * start` uploads to local R2, with what the Worker writes (registered models) in
 * `durableObjectsDir`/r2; its rate limits a stand-in with wrangler.toml's limits (rate-limit.js); its vars wrangler.toml's. What `npm run serve` runs and
 * `npm run soak` measures by default: only this Worker and workerd are in the process it watches.
 */
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { extname, join } from "node:path";
import { unstable_readConfig } from "wrangler";
import { ROOT } from "../model-repository.ts";

export interface PlainWorkerd {
  url: URL;
  pid: number;
  dispose(): Promise<void>;
}

const MODULE_TYPES: Record<string, string> = { ".js": "esModule", ".wasm": "wasm", ".onnx": "data", ".bin": "data" };

const text = (value: string) => JSON.stringify(value); // a capnp text literal

/** A TCP port free on 127.0.0.1 now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/**
 * The capnp configuration of the bundle's `files` (copied to `stateDir`/bundle, since capnp embeds
 * only files below the configuration's folder), listening on 127.0.0.1:`port`.
 *
 * @example
 * writeFileSync(".state/worker.capnp", workerdConfig(readdirSync(bundle), 8787, ".state", { API_KEYS: "k" }));
 */
export function workerdConfig(files: string[], port: number, durableObjectsDir: string, secrets: Record<string, string>): string {
  const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml") });
  const modules = files
    .filter((file) => extname(file) in MODULE_TYPES)
    .sort((a, b) => Number(b === "index.js") - Number(a === "index.js")) // the entry comes first
    .map((file) => `(name = ${text(file)}, ${MODULE_TYPES[extname(file)]} = embed ${text(`bundle/${file}`)})`);
  const vars = Object.entries({ ...(config.vars as Record<string, string>), ...secrets }).map(([name, value]) => `(name = ${text(name)}, text = ${text(String(value))})`);
  const objects = config.durable_objects.bindings.map((b: { name: string; class_name: string }) => b);
  const rateLimits = (config.ratelimits as { name: string; simple: { limit: number; period: number } }[]).map(
    ({ name, simple }) => `(name = ${text(name)}, wrapped = (moduleName = "cnn-edge:rate-limit", innerBindings = [(name = "limit", json = ${text(String(simple.limit))}), (name = "period", json = ${text(String(simple.period))})]))`,
  );
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "models", disk = (path = ${text(ROOT)}, writable = false)),
    (name = "state", disk = (path = ${text(durableObjectsDir)}, writable = true)),
    (name = "uploads", disk = (path = ${text(join(durableObjectsDir, "r2"))}, writable = true)),
  ],
  sockets = [(name = "http", address = ${text(`127.0.0.1:${port}`)}, http = (), service = "main")],
  extensions = [(modules = [(name = "cnn-edge:r2-folder", internal = true, esModule = embed "bundle/r2-folder.js"), (name = "cnn-edge:rate-limit", internal = true, esModule = embed "bundle/rate-limit.js")])],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  compatibilityDate = ${text(config.compatibility_date!)},
  compatibilityFlags = [${(config.compatibility_flags ?? []).map(text).join(", ")}],
  bindings = [
    ${[...vars, `(name = "MODELS", wrapped = (moduleName = "cnn-edge:r2-folder", innerBindings = [(name = "files", service = "models"), (name = "uploads", service = "uploads")]))`, ...rateLimits, ...objects.map((b: { name: string; class_name: string }) => `(name = ${text(b.name)}, durableObjectNamespace = ${text(b.class_name)})`)].join(",\n    ")}
  ],
  durableObjectNamespaces = [${objects.map((b: { class_name: string }) => `(className = ${text(b.class_name)}, uniqueKey = ${text(`${config.name}-${b.class_name}`)}, enableSql = true)`).join(", ")}],
  durableObjectStorage = (localDisk = "state"),
);
`;
}

/**
 * Start the bundle in `dir` in plain workerd (its copy and configuration go to `stateDir`); resolves
 * once it answers /healthz.
 *
 * @example
 * const worker = await startPlainWorkerd({ dir: "test/.build/soak-worker", stateDir: "/tmp/state", secrets: { API_KEYS: "k" } });
 */
export async function startPlainWorkerd({ dir, stateDir, durableObjectsDir = stateDir, secrets = {}, port, requestLog = "print", inspectorPort }: {
  dir: string;
  stateDir: string;
  durableObjectsDir?: string;
  secrets?: Record<string, string>;
  port?: number;
  /** The Worker's log lines (one per request, on stdout): printed, or dropped under a load that would flood the terminal. */
  requestLog?: "print" | "drop";
  /** Open V8's inspector (Chrome DevTools protocol) on 127.0.0.1:`inspectorPort`, for CPU profiles. */
  inspectorPort?: number;
}): Promise<PlainWorkerd> {
  const listen = port ?? (await freePort());
  const bundle = join(stateDir, "bundle");
  mkdirSync(bundle, { recursive: true });
  const files = readdirSync(dir);
  for (const file of files) copyFileSync(join(dir, file), join(bundle, file));
  for (const module of ["r2-folder.js", "rate-limit.js"]) copyFileSync(join(import.meta.dirname, module), join(bundle, module));
  const configPath = join(stateDir, "worker.capnp");
  mkdirSync(join(durableObjectsDir, "r2"), { recursive: true });
  writeFileSync(configPath, workerdConfig(files, listen, durableObjectsDir, secrets));
  const inspector = inspectorPort === undefined ? [] : [`--inspector-addr=127.0.0.1:${inspectorPort}`];
  return spawnWorkerd(configPath, listen, requestLog === "print" ? "inherit" : "ignore", "/healthz", inspector);
}

/**
 * Run `workerd serve` on a capnp configuration that listens on 127.0.0.1:`port`; resolves once
 * GET `readyPath` answers 2xx.
 *
 * @example
 * const hello = await spawnWorkerd("/tmp/hello/hello.capnp", 8790, "ignore", "/");
 */
export async function spawnWorkerd(configPath: string, port: number, stdout: "inherit" | "ignore", readyPath: string, extraArgs: string[] = []): Promise<PlainWorkerd> {
  const binary = (createRequire(import.meta.url)("workerd") as { default: string }).default; // the platform binary's path
  const child = spawn(binary, ["serve", configPath, "--experimental", ...extraArgs], { stdio: ["ignore", stdout, "inherit"] });
  const url = new URL(`http://127.0.0.1:${port}/`);
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  for (let tries = 0; ; tries++) {
    const ready = await fetch(new URL(readyPath, url)).then((r) => r.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null || tries > 300) throw new Error(`workerd did not start (exit code ${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid!,
    dispose: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Resident memory of a process, in bytes (from /proc/<pid>/status); undefined when it cannot be read. */
export function residentBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
