#!/usr/bin/env node
// The TypeScript client's cost to the application, side by side with a baseline:
//  - ns per monitoring call in a tight loop, as a ratio to calling an empty function with the same
//    arguments (the call only builds, checks and queues the event; sending is in the background);
//    once while the queue has room, once with the queue full (exporter down: drop-oldest path);
//  - the size of the browser builds: beacon.js (exporter/static) and the package's browser entry
//    bundled for a widget (raw and gzip -9).
// Run by `make bench` (after `make ts-build`): node benchmarks/ts_client_overhead.mjs
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PKG = join(ROOT, "clients", "typescript");
const { createClient } = await import(join(PKG, "dist", "index.js"));
const esbuild = await import(join(PKG, "node_modules", "esbuild", "lib", "main.js"));

const CALLS = 200_000;
const ROUNDS = 7;

let sink;
function empty(a) {
  sink = a;
}

function time(fn) {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / CALLS;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

async function measure(label, clientOptions, call) {
  // One client per scenario, as in an application (one shared `monitoring`); between rounds its
  // queue is emptied by a flush to an address nothing listens on (no retries).
  const monitoring = createClient({ ...options, ...clientOptions });
  const base = [];
  const client = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate baseline and client in every round so drift in the machine's load hits both.
    base.push(
      time(() => {
        for (let i = 0; i < CALLS; i++) empty({ organizationId: "org-123", amount: 2500, currency: "usd", error: "declined" });
      }),
    );
    client.push(time(() => call(monitoring)));
    await monitoring.flush(10_000);
  }
  const b = median(base);
  const c = median(client);
  console.log(
    `${label.padEnd(58)} ${c.toFixed(1).padStart(7)} ns/call   empty function ${b.toFixed(1).padStart(5)} ns   ratio ${(c / b).toFixed(1)}x`,
  );
}

const options = { url: "http://127.0.0.1:9", flushInterval: 3_600_000, maxRetries: 0, logger: null };
console.log(`TypeScript client, ${CALLS} calls per round, median of ${ROUNDS} rounds (Node ${process.version})`);
await measure("payment.monitorPaymentFailures({...}), queue has room", { maxQueue: CALLS, batchSize: CALLS * 2 }, (m) => {
  for (let i = 0; i < CALLS; i++) {
    m.payment.monitorPaymentFailures({ organizationId: "org-123", amount: 2500, currency: "usd", error: "declined" });
  }
});
await measure("dashboard.monitorEndpointHealth(route, ms, status), room", { maxQueue: CALLS, batchSize: CALLS * 2 }, (m) => {
  for (let i = 0; i < CALLS; i++) m.dashboard.monitorEndpointHealth("/api/donations/:id", 12.5, 200, "GET");
});
await measure("payment.monitorPaymentFailures({...}), queue full (drops)", { maxQueue: 1000, batchSize: CALLS * 2 }, (m) => {
  for (let i = 0; i < CALLS; i++) {
    m.payment.monitorPaymentFailures({ organizationId: "org-123", amount: 2500, currency: "usd", error: "declined" });
  }
});
await measure("an invalid call (counted, not queued)", { maxQueue: CALLS, batchSize: CALLS * 2 }, (m) => {
  for (let i = 0; i < CALLS; i++) m.payment.monitorPaymentFailures({ amount: 2500 });
});

function size(label, code) {
  const raw = Buffer.byteLength(code);
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`${label.padEnd(58)} ${String(raw).padStart(7)} B raw   ${String(gz).padStart(6)} B gzip`);
}
console.log("\nBrowser builds");
size("exporter/static/beacon.js (the snippet, ES5)", readFileSync(join(ROOT, "exporter", "static", "beacon.js"), "utf8"));
const bundle = await esbuild.build({
  stdin: {
    contents: 'import { monitoring } from "./dist/browser.js"; window.monitoring = monitoring;',
    resolveDir: PKG,
  },
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  write: false,
});
size("@passiton/monitoring browser entry, bundled + minified", bundle.outputFiles[0].text);
sink = undefined;
process.exit(0);
