// The MODELS bucket for the Worker in plain workerd (scripts/workerd/serve.ts), which has no R2 of
// its own: a stand-in over two disk services, the repository (read-only: its models/<id>/<n>/
// paths are the bucket's keys) and a writable folder of the state directory, where the objects
// the Worker puts (models registered through POST /v1/models) go and are read first. It answers
// what the Worker asks of R2: get(key), with the body as a stream or as bytes, or null for a
// missing key; put(key, bytes); delete(key or keys).
const path = (key) => `http://files/${key.split("/").map(encodeURIComponent).join("/")}`;

export default function makeBucket(env) {
  async function read(service, key) {
    const res = await service.fetch(new Request(path(key)));
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`r2-folder: reading ${key} gave ${res.status}`);
    const size = Number(res.headers.get("content-length") ?? 0);
    return { key, size, body: res.body, arrayBuffer: () => res.arrayBuffer(), text: () => res.text() };
  }
  return {
    async get(key) {
      return (await read(env.uploads, key)) ?? read(env.files, key);
    },
    async put(key, bytes) {
      const res = await env.uploads.fetch(new Request(path(key), { method: "PUT", body: bytes }));
      if (!res.ok) throw new Error(`r2-folder: writing ${key} gave ${res.status}`);
      return { key, size: bytes.byteLength };
    },
    async delete(keys) {
      for (const key of Array.isArray(keys) ? keys : [keys]) await env.uploads.fetch(new Request(path(key), { method: "DELETE" }));
    },
  };
}
