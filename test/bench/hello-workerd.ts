/**
 * The runtime's own ceiling: a Worker that answers every request with a constant JSON body (the
 * shape of a classify answer, so the same load generator reads it), in plain `workerd serve` as
 * cnn-edge runs in the benchmark. What it costs per request is the part no Worker can remove.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, spawnWorkerd, type PlainWorkerd } from "../../scripts/workerd/serve.ts";

const HELLO = `export default { fetch: () => new Response('{"timing":{"batch":{"images":1,"requests":1}}}', { headers: { "content-type": "application/json" } }) };\n`;

/** Start the hello-world Worker; resolves once it answers. */
export async function startHelloWorkerd(): Promise<PlainWorkerd> {
  const dir = mkdtempSync(join(tmpdir(), "cnn-edge-hello-"));
  const port = await freePort();
  writeFileSync(join(dir, "hello.js"), HELLO);
  writeFileSync(join(dir, "hello.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = (modules = [(name = "hello.js", esModule = embed "hello.js")], compatibilityDate = "2026-07-01"))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
`);
  const workerd = await spawnWorkerd(join(dir, "hello.capnp"), port, "ignore", "/");
  return {
    ...workerd,
    dispose: async () => {
      await workerd.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
