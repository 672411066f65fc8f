/** Peak resident memory of the workerd processes this process started (Miniflare's), from /proc. */
import { readFileSync, readdirSync } from "node:fs";

function status(pid: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined; // gone meanwhile
  }
}

/**
 * Bytes of the largest VmHWM (peak RSS) among workerd processes whose parent is this process:
 * the whole runtime with its isolate, so an upper bound on the isolate's own peak.
 *
 * @example
 * const peak = workerdPeakBytes(); // read before disposing the Worker
 */
export function workerdPeakBytes(): number {
  let peak = 0;
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    const text = status(pid);
    if (!text || !/^Name:\s*workerd/m.test(text) || Number(/^PPid:\s*(\d+)/m.exec(text)?.[1]) !== process.pid) continue;
    peak = Math.max(peak, Number(/^VmHWM:\s*(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024);
  }
  return peak;
}
