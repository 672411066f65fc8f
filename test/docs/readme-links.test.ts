/**
 * The READMEs link each other and the code: every relative link must name a file that exists
 * and, with a #fragment, a heading in the Markdown file it points at (GitHub's anchor rules), so
 * moving a section or renaming a file cannot leave a dead link behind.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { expect, it } from "vitest";
import { ROOT } from "../support/paths";

const READMES = ["README.md", "workers/README.md", "models/README.md", "scripts/README.md", "test/bench/README.md"];

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, "").replace(/ /g, "-");
}

/** The text outside fenced code blocks, where links and headings count. */
function prose(markdown: string): string {
  return markdown.split(/^```.*$/m).filter((_, i) => i % 2 === 0).join("\n");
}

function anchorsOf(file: string): Set<string> {
  return new Set([...prose(readFileSync(file, "utf8")).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
}

it("every relative link in the READMEs reaches a file, and every #fragment a heading", () => {
  const dead: string[] = [];
  let checked = 0;
  for (const readme of READMES) {
    const path = join(ROOT, readme);
    for (const [, target] of prose(readFileSync(path, "utf8")).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      checked++;
      const [file, fragment] = target!.split("#") as [string, string | undefined];
      const resolved = file ? join(dirname(path), file) : path;
      if (!existsSync(resolved)) dead.push(`${readme}: ${target} (no ${relative(ROOT, resolved)})`);
      else if (fragment && resolved.endsWith(".md") && !anchorsOf(resolved).has(fragment)) dead.push(`${readme}: ${target} (no heading #${fragment})`);
    }
  }
  expect(dead).toEqual([]);
  expect(checked).toBeGreaterThan(50);
});
