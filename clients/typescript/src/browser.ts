// The browser entry (bundlers pick it through the "browser" export condition): the same
// `monitoring` API, sending widget events with `navigator.sendBeacon` to the exporter's PUBLIC
// beacon endpoint, `POST {url}/v1/beacon?key=KEY`, with the widget's key — never an ingest token.
//
//   import { monitoring } from "@passiton/monitoring";
//   monitoring.initialize({ url: "https://monitoring.example.org", key: WIDGET_KEY });
//   monitoring.widget.monitorWidgetLoadError({ organizationId, widgetId, url: location.href, error: err.message });
//
// Only the beacon's event types (widget.*) are accepted by that endpoint; other calls in a page are
// counted as invalid. Queued events are sent when the page is hidden or left.
import { BEACON_TYPES } from "./generated/events.js";
import type { Client } from "./client.js";
import { createMonitoring, type Monitoring, type MonitoringOptions } from "./monitoring.js";

export * from "./monitoring.js";
export { buildEvent, InvalidCall, MAX_TEXT } from "./events.js";
export type { Event, EventType, BeaconEvent } from "./generated/events.js";
export { EVENT_FIELDS, BEACON_TYPES } from "./generated/events.js";
export { beaconUrl, postBeacon } from "./beacon-transport.js";

interface PageGlobal {
  addEventListener?: (type: string, fn: () => void) => void;
  document?: { visibilityState?: string; addEventListener?: (type: string, fn: () => void) => void };
}

/** A new, independent client (most pages use the shared `monitoring`). */
export function createClient(options?: MonitoringOptions): Monitoring {
  let self: Monitoring;
  let hooked = false;
  let client: Client | null = null;
  self = createMonitoring(
    {
      // A page holds no ingest token: unless one is given explicitly, use the beacon.
      defaults: (): MonitoringOptions => ({ transport: "beacon", flushInterval: 1000 }),
      started: (_monitoring, started) => {
        client = started;
        const g = globalThis as unknown as PageGlobal;
        if (hooked || typeof g.addEventListener !== "function") return;
        hooked = true;
        // The page may never run a timer again: hand the queue to the browser right here.
        const leave = () => {
          if (client && client.transport === "beacon") client.sendBeaconsNow();
          else void self.flush(0);
        };
        g.addEventListener("pagehide", leave);
        g.document?.addEventListener?.("visibilitychange", () => {
          if (g.document?.visibilityState === "hidden") leave();
        });
      },
    },
    options,
  );
  return self;
}

/** Whether the beacon endpoint takes this event type. */
export function isBeaconType(type: string): boolean {
  return (BEACON_TYPES as readonly string[]).indexOf(type) >= 0;
}

/** The shared client: `import { monitoring } from "@passiton/monitoring"` in a browser bundle. */
export const monitoring: Monitoring = createClient();
export default monitoring;
