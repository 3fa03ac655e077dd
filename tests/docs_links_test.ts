/**
 * The docs hold together: every relative link in README.md and docs/**\/*.md names a file of the repository, and every
 * `#anchor` into a markdown file names one of its headings, by GitHub's rules for heading ids. The README stays what a
 * newcomer reads in five minutes: at most 15 KB.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(fileURLToPath(new URL("..", import.meta.url))).replace(/[\\/]+$/, "");
const README_MAX_BYTES = 15_000;

/** GitHub's id for a heading's text (github-slugger): lower case, punctuation and symbols dropped, spaces to `-`. */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** The text a heading renders as: inline code, links, images, emphasis and HTML tags reduced to their words. */
function headingText(raw: string): string {
  return raw
    .replace(/\s+#+\s*$/, "") // a closing sequence of #
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/(^|\W)_([^_]+)_(?=\W|$)/g, "$1$2")
    .trim();
}

/** The lines of a markdown text outside fenced code blocks (fenced lines become empty, so line numbers hold). */
function proseLines(text: string): string[] {
  let fence: string | undefined;
  return text.split("\n").map((line) => {
    const open = line.match(/^ {0,3}(`{3,}|~{3,})/);
    if (fence !== undefined) {
      if (open && open[1][0] === fence[0] && open[1].length >= fence.length && line.trim() === open[1]) {
        fence = undefined;
      }
      return "";
    }
    if (open) {
      fence = open[1];
      return "";
    }
    return line;
  });
}

/** Every anchor a markdown file offers: its headings' ids (repeats numbered as GitHub does) and HTML ids and names. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (heading: string) => {
    const base = slug(headingText(heading));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  };
  const lines = proseLines(text);
  lines.forEach((line, i) => {
    const atx = line.match(/^ {0,3}#{1,6}(?:\s+(.*))?$/);
    if (atx) return add(atx[1] ?? "");
    const previous = i > 0 ? lines[i - 1] : "";
    if (
      /^ {0,3}(=+|-+)\s*$/.test(line) && previous.trim() !== "" && !/^\s*[|>#*+-]/.test(previous) &&
      !/^ {0,3}(=+|-+)\s*$/.test(previous)
    ) {
      add(previous.trim());
    }
  });
  for (const m of text.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
  return anchors;
}

/** The link targets of a markdown text with their line numbers: inline links, images and reference definitions. */
export function linksOf(text: string): { target: string; line: number }[] {
  const links: { target: string; line: number }[] = [];
  proseLines(text).forEach((raw, i) => {
    const line = raw.replace(/`+[^`]*`+/g, (code) => " ".repeat(code.length)); // code spans are not links
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      links.push({ target: m[1].replace(/^<|>$/g, ""), line: i + 1 });
    }
    const def = line.match(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/);
    if (def) links.push({ target: def[1].replace(/^<|>$/g, ""), line: i + 1 });
  });
  return links;
}

/** What is wrong with one link of `file` (a path under ROOT), or undefined when it resolves. */
async function problemOf(file: string, target: string): Promise<string | undefined> {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) return undefined; // not relative
  const hash = target.indexOf("#");
  const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = path === "" ? file : normalize(join(dirname(file), path));
  if (resolved !== ROOT && !resolved.startsWith(ROOT + sep)) return "points outside the repository";
  let isFile: boolean;
  try {
    isFile = (await Deno.stat(resolved)).isFile;
  } catch {
    return `no such file: ${relative(ROOT, resolved)}`;
  }
  if (anchor === undefined || anchor === "") return undefined;
  if (!isFile || !resolved.endsWith(".md")) {
    return `an anchor into ${relative(ROOT, resolved)}, which is no markdown file`;
  }
  const anchors = anchorsOf(await Deno.readTextFile(resolved));
  return anchors.has(anchor) ? undefined : `no heading #${anchor} in ${relative(ROOT, resolved)}`;
}

async function markdownFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await markdownFiles(path));
    else if (entry.isFile && entry.name.endsWith(".md")) files.push(path);
  }
  return files.sort();
}

/** Every broken link of the given files, as `file:line: target (why)`. */
async function brokenLinks(files: string[]): Promise<string[]> {
  const broken: string[] = [];
  for (const file of files) {
    for (const { target, line } of linksOf(await Deno.readTextFile(file))) {
      const problem = await problemOf(file, target);
      if (problem !== undefined) broken.push(`${relative(ROOT, file)}:${line}: ${target} (${problem})`);
    }
  }
  return broken;
}

Deno.test("docs: GitHub's heading ids", () => {
  assert.equal(slug("The customer-service spec's test procedure"), "the-customer-service-specs-test-procedure");
  assert.equal(slug(headingText("Contacts and `contact_id`")), "contacts-and-contact_id");
  assert.equal(slug("2026-11-30: the agent page at 1,000 contacts"), "2026-11-30-the-agent-page-at-1000-contacts");
  assert.equal(slug(headingText("One kefu per `DATA_DIR`")), "one-kefu-per-data_dir");
  assert.equal(slug("Agent → kefu"), "agent--kefu");
  assert.equal(slug("中文简介：kefu"), "中文简介kefu");
  assert.deepEqual([...anchorsOf("# A\n\n## A\n\n```\n# not a heading\n```\n\nB\n---\n")], ["a", "a-1", "b"]);
});

Deno.test("docs: links are found outside code, and a broken one is reported", async () => {
  assert.deepEqual(linksOf('[a](x.md#y) `[b](no.md)`\n```\n[c](no.md)\n```\n![d](e.png "t")\n[r]: f.md'), [
    { target: "x.md#y", line: 1 },
    { target: "e.png", line: 5 },
    { target: "f.md", line: 6 },
  ]);
  const readme = join(ROOT, "README.md");
  assert.equal(await problemOf(readme, "docs/configuration.md#storage"), undefined);
  assert.equal(await problemOf(readme, "https://example.com/nowhere.md"), undefined);
  assert.match(await problemOf(readme, "docs/no-such-page.md") ?? "", /no such file/);
  assert.match(await problemOf(readme, "docs/configuration.md#no-such-heading") ?? "", /no heading/);
  assert.match(await problemOf(readme, "../outside.md") ?? "", /outside the repository/);
});

Deno.test("docs: every relative link and anchor in README.md and docs/ resolves", async () => {
  const files = [join(ROOT, "README.md"), ...await markdownFiles(join(ROOT, "docs"))];
  assert.ok(files.length > 5, `expected the docs' pages, found ${files.length}`);
  assert.deepEqual(await brokenLinks(files), []);
});

Deno.test("docs: README.md is at most 15 KB", async () => {
  const { size } = await Deno.stat(join(ROOT, "README.md"));
  assert.ok(
    size <= README_MAX_BYTES,
    `README.md is ${size} bytes, more than ${README_MAX_BYTES}: move detail to docs/`,
  );
});
