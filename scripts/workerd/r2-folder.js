// The MODELS bucket for the Worker in plain workerd (scripts/workerd/serve.ts), which has no R2 of
// its own: a read-only stand-in over a disk service holding the repository, whose models/<id>/<n>/
// paths are the bucket's keys. It answers what the Worker asks of R2: get(key), with the body as a
// stream or as bytes, or null for a missing key.
export default function makeBucket(env) {
  return {
    async get(key) {
      const res = await env.files.fetch(new Request(`http://files/${key.split("/").map(encodeURIComponent).join("/")}`));
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`r2-folder: reading ${key} gave ${res.status}`);
      const size = Number(res.headers.get("content-length") ?? 0);
      return { key, size, body: res.body, arrayBuffer: () => res.arrayBuffer(), text: () => res.text() };
    },
  };
}
