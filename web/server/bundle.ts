// The console's static bundle: web/app/ (Preact, signals, uPlot) built by esbuild into one script and
// one stylesheet, minified, named by their content's hash, with an index.html that loads them. Built in
// memory when `weir console` starts (about a fifth of a second), so there is no build step to forget
// and no stale bundle to serve; `weir console build --out <dir>` writes the same files for a server of
// one's own.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

export const APP_ENTRY = fileURLToPath(new URL("../app/main.tsx", import.meta.url));

export interface BundleFile {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

export interface ConsoleBundle {
  index: BundleFile;
  /** Assets by file name (`app-<hash>.js`, `app-<hash>.css`). */
  files: Map<string, BundleFile>;
  /** Bytes of the script and the stylesheet, raw and gzipped. */
  size: { js: number; css: number; jsGzip: number; cssGzip: number };
  buildMs: number;
}

function file(type: string, body: Buffer): BundleFile {
  return { type, body, gzip: gzipSync(body, { level: 9 }) };
}

export async function buildConsoleBundle(): Promise<ConsoleBundle> {
  const started = performance.now();
  const result = await build({
    entryPoints: [APP_ENTRY],
    bundle: true,
    minify: true,
    write: false,
    format: "esm",
    target: ["es2022"],
    outdir: "out",
    entryNames: "app",
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    logLevel: "silent",
    define: { "process.env.NODE_ENV": '"production"' },
  });
  const files = new Map<string, BundleFile>();
  let js = "";
  let css = "";
  const size = { js: 0, css: 0, jsGzip: 0, cssGzip: 0 };
  for (const out of result.outputFiles) {
    const body = Buffer.from(out.contents);
    const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
    if (out.path.endsWith(".js")) {
      js = `app-${hash}.js`;
      const f = file("text/javascript; charset=utf-8", body);
      files.set(js, f);
      size.js = body.length;
      size.jsGzip = f.gzip.length;
    } else if (out.path.endsWith(".css")) {
      css = `app-${hash}.css`;
      const f = file("text/css; charset=utf-8", body);
      files.set(css, f);
      size.css = body.length;
      size.cssGzip = f.gzip.length;
    }
  }
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>weir console</title>
${css ? `<link rel="stylesheet" href="/assets/${css}">` : ""}
<script type="module" src="/assets/${js}"></script>
</head>
<body><div id="app"></div></body>
</html>
`;
  return {
    index: file("text/html; charset=utf-8", Buffer.from(html)),
    files,
    size,
    buildMs: performance.now() - started,
  };
}

/** Writes index.html and assets/ into `dir`. */
export function writeConsoleBundle(bundle: ConsoleBundle, dir: string): string[] {
  mkdirSync(join(dir, "assets"), { recursive: true });
  const written = [join(dir, "index.html")];
  writeFileSync(written[0] as string, bundle.index.body);
  for (const [name, f] of bundle.files) {
    const path = join(dir, "assets", name);
    writeFileSync(path, f.body);
    written.push(path);
  }
  return written;
}
