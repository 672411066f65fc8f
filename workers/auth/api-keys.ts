/**
 * API keys. Two Worker secrets hold comma-separated keys (several at once, so that a key can be
 * rotated without downtime):
 *
 *   API_KEYS       full access: everything that creates, changes or deletes state, and reads;
 *   CLASSIFY_KEYS  inference only: classify and read classifiers (optional; give these to clients).
 *
 * `CLASSIFY_ACCESS` ("public" or "key") says whether classify and read routes need a key at all.
 * Write routes always need an API_KEYS key; with no API_KEYS set they are closed, never open
 * (require-access.ts).
 */

/**
 * The keys in a secret's value: comma- or whitespace-separated, blanks ignored.
 *
 * @example
 * parseKeys("k1, k2"); // ["k1", "k2"]
 */
export function parseKeys(secret: string | undefined): string[] {
  return (secret ?? "").split(/[\s,]+/).filter((key) => key.length > 0);
}

/**
 * The bearer token of an Authorization header, or undefined when there is none.
 *
 * @example
 * bearerToken("Bearer abc"); // "abc"
 */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * Whether `presented` is one of `keys`, in time that depends neither on where a key and the
 * token first differ nor on which key matched: every key is compared, as SHA-256 digests (equal
 * lengths, so a key's length does not leak either), with no early exit.
 *
 * @example
 * await matchesAnyKey("k2", ["k1", "k2"]); // true
 */
export async function matchesAnyKey(presented: string, keys: readonly string[]): Promise<boolean> {
  const token = await sha256(presented);
  let matched = 0;
  for (const key of keys) {
    const digest = await sha256(key);
    let diff = 0;
    for (let i = 0; i < digest.length; i++) diff |= digest[i]! ^ token[i]!;
    matched |= Number(diff === 0);
  }
  return matched === 1;
}
