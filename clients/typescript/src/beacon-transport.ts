// The one way events leave a browser page, shared by the package's browser entry and beacon.js:
// `navigator.sendBeacon` to the public beacon endpoint (a text/plain body, so no CORS preflight,
// and it survives the page being closed), else `fetch` with `keepalive`. ES5-safe, never throws.

/** What became of a beacon: handed to the browser, answered 2xx by fetch, or lost. */
export type BeaconOutcome = "queued" | "sent" | "failed";

interface BrowserGlobal {
  navigator?: { sendBeacon?: (url: string, body: string) => boolean };
  fetch?: (url: string, init: object) => { then: (ok: (r: { status: number }) => void, err: () => void) => unknown };
}

/** `ENDPOINT/v1/beacon`, with `?key=KEY` (the widget's key from `passiton-monitoring beacon-key`) when there is one. */
export function beaconUrl(endpoint: string, key?: string | null): string {
  return endpoint + "/v1/beacon" + (key ? "?key=" + encodeURIComponent(key) : "");
}

export function postBeacon(
  w: BrowserGlobal,
  endpoint: string,
  key: string | null | undefined,
  body: string,
  done?: (outcome: BeaconOutcome) => void,
): void {
  const url = beaconUrl(endpoint, key);
  const n = w.navigator;
  const finish = function (outcome: BeaconOutcome) {
    try {
      if (done) done(outcome);
    } catch (e) {
      /* never into the page */
    }
  };
  try {
    if (n && n.sendBeacon && n.sendBeacon(url, body)) return finish("queued");
  } catch (e) {
    /* fall back to fetch */
  }
  try {
    if (!w.fetch) return finish("failed");
    w.fetch(url, {
      method: "POST",
      body: body,
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain" },
    }).then(
      function (r) {
        finish(r.status >= 200 && r.status < 300 ? "sent" : "failed");
      },
      function () {
        finish("failed");
      },
    );
  } catch (e) {
    finish("failed");
  }
}
