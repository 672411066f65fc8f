/**
 * Local development needs no setup: before `npm start`, give wrangler dev a full-access API key
 * in .dev.vars (git-ignored; wrangler dev reads it as the Worker's secrets) unless one is there,
 * and print it, so that the write routes work locally behind the same checks as deployed.
 *
 *   node scripts/dev-api-key.ts
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./model-repository.ts";

const file = join(ROOT, ".dev.vars");
const text = existsSync(file) ? readFileSync(file, "utf8") : "";
let key = /^API_KEYS\s*=\s*"?([^",\s]+)/m.exec(text)?.[1];
if (!key) {
  key = `dev-${randomBytes(16).toString("hex")}`;
  appendFileSync(file, `${text && !text.endsWith("\n") ? "\n" : ""}API_KEYS=${key}\n`);
}
console.log(`development API key (full access, from .dev.vars): ${key}`);
console.log(`  e.g. curl -H "Authorization: Bearer ${key}" ...  (classify needs none locally)`);
