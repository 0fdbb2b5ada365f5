#!/usr/bin/env node
// Builds exporter/static/beacon.js (the exporter serves it as GET /v1/beacon.js) and
// dist/beacon.js from src/beacon.ts: TypeScript down to ES5, bundled and minified by esbuild.
//
//   node scripts/build-beacon.mjs                 write dist/beacon.js
//   node scripts/build-beacon.mjs --write-static  also write the committed exporter/static/beacon.js
//   node scripts/build-beacon.mjs --check         exit 1 when the committed exporter/static/beacon.js is stale
//   node scripts/build-beacon.mjs --size    print {"raw": bytes, "gzip": bytes} of the build
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";
import ts from "typescript";

const PKG = join(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = join(PKG, "src", "beacon.ts");
const COMMITTED = join(PKG, "..", "..", "exporter", "static", "beacon.js");
const DIST = join(PKG, "dist", "beacon.js");

const HEADER =
  "/* PassItOn widget beacon. GENERATED from clients/typescript/src/beacon.ts by " +
  "clients/typescript/scripts/build-beacon.mjs (make ts-generate); do not edit. Usage:\n" +
  ' * <script src="https://EXPORTER/v1/beacon.js" data-organization-id="org" data-widget-id="w" data-key="KEY"></script>\n' +
  " * or PassItOnBeacon.init({endpoint, organizationId, widgetId, key}); hooks: loaded(ms), loadError(err),\n" +
  " * renderError(err), flush(). */\n";

// esbuild cannot lower ES2015+ to ES5; TypeScript can. Each module is transpiled to ES5 first.
const es5 = {
  name: "typescript-es5",
  setup(build) {
    build.onResolve({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(".")) return undefined;
      return { path: join(args.resolveDir, args.path.replace(/\.js$/, ".ts")) };
    });
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      const out = ts.transpileModule(source, {
        compilerOptions: {
          target: ts.ScriptTarget.ES5,
          module: ts.ModuleKind.ESNext,
          importHelpers: false,
          noEmitHelpers: false,
        },
        fileName: args.path,
      });
      return { contents: out.outputText, loader: "js" };
    });
  },
};

export async function buildBeacon() {
  const result = await esbuild.build({
    entryPoints: [ENTRY],
    bundle: true,
    write: false,
    format: "iife",
    target: "es5",
    minify: true,
    legalComments: "none",
    charset: "ascii",
    plugins: [es5],
    logLevel: "silent",
  });
  return HEADER + result.outputFiles[0].text;
}

async function main() {
  const code = await buildBeacon();
  const mode = process.argv[2];
  if (mode === "--size") {
    process.stdout.write(
      JSON.stringify({ raw: Buffer.byteLength(code), gzip: gzipSync(code, { level: 9 }).length }) + "\n",
    );
    return;
  }
  if (mode === "--check") {
    let committed = "";
    try {
      committed = readFileSync(COMMITTED, "utf8");
    } catch {
      // missing is stale
    }
    if (committed !== code) {
      process.stderr.write(
        "exporter/static/beacon.js is not the build of clients/typescript/src/beacon.ts;" +
          " run `make ts-generate` and commit the result\n",
      );
      process.exit(1);
    }
    return;
  }
  if (mode === "--write-static") writeFileSync(COMMITTED, code);
  mkdirSync(dirname(DIST), { recursive: true });
  writeFileSync(DIST, code);
}

await main();
