/** Running a training script's --smoke mode into a fresh folder. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PYTHON, ROOT } from "./paths";

export interface SmokeRun {
  dir: string;
  log: string;
  manifest: Record<string, any>;
}

export function smokeRun(script: string, ...args: string[]): SmokeRun {
  const dir = mkdtempSync(join(tmpdir(), "smoke-"));
  const log = execFileSync(PYTHON, [join(ROOT, "scripts", script), "--smoke", "--threads", "2", "--out", dir, ...args], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return { dir, log, manifest: JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) };
}
