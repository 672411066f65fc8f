// A Workers Rate Limiting binding for the Worker in plain workerd (scripts/workerd/serve.ts),
// which has none of its own: the same fixed windows Miniflare counts (each `period` seconds long,
// starting on multiples of it), per key, for the one isolate plain workerd runs. Its inner
// bindings are the limit and the period from wrangler.toml. It answers what the Worker asks:
// limit({ key }) -> { success }.
export default function makeRateLimit(env) {
  const limit = Number(env.limit);
  const period = Number(env.period);
  let window = -1;
  const counts = new Map();
  return {
    async limit({ key = "" } = {}) {
      const current = Math.floor(Date.now() / (period * 1000));
      if (current !== window) {
        window = current;
        counts.clear();
      }
      const used = counts.get(key) ?? 0;
      if (used >= limit) return { success: false };
      counts.set(key, used + 1);
      return { success: true };
    },
  };
}
