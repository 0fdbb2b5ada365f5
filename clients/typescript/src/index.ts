// The Node entry point: `import { monitoring } from "@passiton/monitoring"`.
//
// `monitoring.initialize({ url, token })` (or PASSITON_EXPORTER_URL and EXPORTER_INGEST_TOKEN in the
// environment) points it at the exporter's internal listener. Whatever is still queued is sent
// when the event loop empties (beforeExit), and on SIGTERM/SIGINT when nothing else handles them,
// for at most EXIT_FLUSH_MS: the client's timers and waits are unref'd, so it never keeps a
// process alive beyond that, whether the exporter refuses connections or never answers.
import type { Client } from "./client.js";
import { createMonitoring, type Monitoring, type MonitoringOptions } from "./monitoring.js";

export * from "./monitoring.js";
export { Client, retryAfterMs } from "./client.js";
export { buildEvent, InvalidCall, MAX_TEXT } from "./events.js";
export type { Event, EventType, BeaconEvent } from "./generated/events.js";
export { EVENT_FIELDS, BEACON_TYPES } from "./generated/events.js";
export { expressMiddleware, routeTemplate } from "./express.js";
export { withMonitoring } from "./next.js";

/** The longest a process's exit waits for the monitoring events still queued (like Sentry's 2 s). */
export const EXIT_FLUSH_MS = 2000;

const live = new Set<Client>();
let hooked = false;

function env(): { [name: string]: string | undefined } {
  const p = (globalThis as { process?: { env?: { [name: string]: string | undefined } } }).process;
  return p?.env ?? {};
}

function hookProcess(): void {
  const proc = (globalThis as { process?: NodeJS.Process }).process;
  if (hooked || !proc || typeof proc.on !== "function") return;
  hooked = true;
  let flushing = false;
  proc.on("beforeExit", () => {
    // The loop is empty: send what is left, for EXIT_FLUSH_MS at most; then whatever is still
    // pending is abandoned (counted), so the next beforeExit finds nothing and the process exits.
    // An exporter whose last attempt already failed (a batch waiting for its retry) is not
    // waited for at all; during this flush a failed attempt is not retried.
    if (flushing) return;
    const pending = [...live].filter((c) => !c.isClosed && c.pending > 0);
    if (!pending.length) return;
    flushing = true;
    void Promise.all(
      pending.map(async (c) => {
        c.exiting = true; // one attempt per batch: no retry waits, no Retry-After pause
        try {
          if (c.failing || !(await c.flush(EXIT_FLUSH_MS))) c.abandon();
        } finally {
          c.exiting = false;
        }
      }),
    ).finally(() => {
      flushing = false;
    });
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const onSignal = () => {
      // Only when ours is the only handler do we own the shutdown: flush, then die of the signal
      // as the default handler would have. Otherwise the application decides (and should close()).
      const alone = proc.listenerCount(signal) === 1;
      const clients = [...live].filter((c) => !c.isClosed);
      const done = Promise.all(clients.map((c) => (alone ? c.close(EXIT_FLUSH_MS) : c.flush(EXIT_FLUSH_MS))));
      if (!alone) return;
      proc.removeListener(signal, onSignal);
      void done.finally(() => proc.kill(proc.pid, signal));
    };
    proc.on(signal, onSignal);
  }
}

/** A new, independent client (most applications use the shared `monitoring`). */
export function createClient(options?: MonitoringOptions): Monitoring {
  const platform = {
    defaults: (): MonitoringOptions => {
      const e = env();
      return { url: e.PASSITON_EXPORTER_URL, token: e.EXPORTER_INGEST_TOKEN, transport: "events" };
    },
    autoStart: () => Boolean(env().PASSITON_EXPORTER_URL),
    started: (_started: Monitoring, client: Client) => {
      for (const c of live) if (c.isClosed) live.delete(c);
      if (client.disabled) return;
      live.add(client);
      hookProcess();
    },
  };
  return createMonitoring(platform, options);
}

/** The shared client: `import { monitoring } from "@passiton/monitoring"`. */
export const monitoring: Monitoring = createClient();
export default monitoring;
