// A REAL exporter process (`passiton-monitoring exporter`) on free ports, for the client's tests,
// and helpers to read its /metrics as a map of series.
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const TOKEN = "ts-client-test-ingest-token-0123456789abcdef";
export const BEACON_SECRET = "ts-client-test-beacon-secret-0123456789abcdef";
const BIN = process.env.PASSITON_MONITORING_BIN || join(ROOT, ".venv", "bin", "passiton-monitoring");
export const WAIT = 15_000; // generous bound for background work, never a timing assertion

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value (then returns it) or WAIT passes (then throws). */
export async function eventually(check, what = "condition", wait = WAIT) {
  const deadline = Date.now() + wait;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await sleep(50);
  }
}

/**
 * Starts `passiton-monitoring exporter` with the ingest token, on `port` (free one by default).
 * `url` is the internal listener (/v1/events, /metrics); `publicUrl` the beacon's listener.
 */
export async function startExporter({ port, env = {} } = {}) {
  const internal = port ?? (await freePort());
  const pub = await freePort();
  const child = spawn(BIN, ["exporter", "--listen", `127.0.0.1:${internal}`], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? "/tmp",
      // a worktree's sources ahead of the installed ones, when the caller sets it
      ...(process.env.PYTHONPATH ? { PYTHONPATH: process.env.PYTHONPATH } : {}),
      EXPORTER_INGEST_TOKEN: TOKEN,
      EXPORTER_PUBLIC_LISTEN: `127.0.0.1:${pub}`,
      EXPORTER_BEACON_SECRET: BEACON_SECRET,
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const url = `http://127.0.0.1:${internal}`;
  try {
    await eventually(async () => (await fetch(`${url}/-/healthy`)).ok, `the exporter at ${url}`);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`${err.message}\nexporter stderr:\n${stderr}`);
  }
  // Until the public listener exists (issue 10), the beacon is served on the one listener.
  let publicUrl = `http://127.0.0.1:${pub}`;
  try {
    await fetch(`${publicUrl}/-/healthy`);
  } catch {
    publicUrl = url;
  }
  return {
    url,
    publicUrl,
    port: internal,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The widget's key, minted by `passiton-monitoring beacon-key` with the tests' secret. */
export function beaconKey(organizationId, widgetId) {
  const done = spawnSync(BIN, ["beacon-key", "--organization", organizationId, "--widget", widgetId], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME ?? "/tmp", EXPORTER_BEACON_SECRET: BEACON_SECRET },
    encoding: "utf8",
  });
  if (done.status !== 0) throw new Error(`beacon-key failed: ${done.stderr}`);
  return done.stdout.trim();
}

/** Every sample of /metrics as `name{labels}` -> value, labels sorted. */
export async function samples(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = [];
    for (const l of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels.push(`${l[1]}="${l[2]}"`);
    labels.sort();
    out.set(`${m[1]}{${labels.join(",")}}`, Number(m[4]));
  }
  return out;
}

/** The application-signal series (passiton_*), leaving out what depends on timing. */
export function domainSeries(all) {
  const out = {};
  for (const [key, value] of all) {
    if (!key.startsWith("passiton_")) continue;
    if (key.startsWith("passiton_exporter_ingest_duration_seconds")) continue;
    // the exporter's own loop-lag sampler ticks on a timer, not on events
    if (key.startsWith("passiton_event_loop_lag_seconds")) continue;
    if (key.split("{")[0].endsWith("_created")) continue;
    if (value === 0) continue;
    out[key] = value;
  }
  return out;
}

/** The value of the first series whose key contains every fragment, or 0. */
export function valueOf(all, name, ...fragments) {
  let total = 0;
  for (const [key, value] of all) {
    if (key.split("{")[0] === name && fragments.every((f) => key.includes(f))) total += value;
  }
  return total;
}
