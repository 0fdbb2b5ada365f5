// The browser builds in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
// a page embedding the beacon.js snippet that the real exporter serves, with a failing widget,
// produces the widget series; so does the package's browser entry with the original design's call.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { beaconKey, eventually, ROOT, samples, startExporter, valueOf } from "./support/exporter.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];
const DIST = join(ROOT, "clients", "typescript", "dist");

let exporter;
let browser;
let site;
let pages = {};

before(async () => {
  site = createServer((req, res) => {
    const path = req.url.split("?")[0];
    if (pages[path]) {
      const type = path.endsWith(".js") ? "text/javascript" : "text/html";
      res.writeHead(200, { "Content-Type": type }).end(pages[path]);
    } else if (path.startsWith("/dist/")) {
      const file = join(DIST, path.slice("/dist/".length).replace(/\.\./g, ""));
      try {
        res.writeHead(200, { "Content-Type": "text/javascript" }).end(readFileSync(file));
      } catch {
        res.writeHead(404).end();
      }
    } else {
      res.writeHead(404).end("not found"); // the widget's own script: missing, as in an outage
    }
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${site.address().port}`;
  exporter = await startExporter({ env: { EXPORTER_CORS_ORIGINS: origin } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await exporter?.stop();
  site?.close();
});

function siteUrl(path) {
  return `http://127.0.0.1:${site.address().port}${path}`;
}

test("the beacon.js snippet served by the exporter reports a failing widget's errors and load time, not the host page's", async () => {
  // the widget's scripts are under /widget/ (data-widget-src): its missing script and its script
  // error are reported; the host page's own error and its broken image are not (issue 18)
  pages["/widget/app.js"] = "setTimeout(function () { undefinedWidgetFunction(); }, 0);";
  pages["/give"] = `<!doctype html><html><head>
    <script src="${exporter.publicUrl}/v1/beacon.js" data-organization-id="org-browser"
            data-widget-id="widget-456" data-key="${beaconKey("org-browser", "widget-456")}"
            data-widget-src="/widget/"></script>
    <script src="/widget/missing.js"></script>
    <script src="/widget/app.js"></script>
    </head><body><div id="widget"></div><img src="/host-missing.png">
    <script>
      setTimeout(function () { undefinedHostFunction(); }, 0);
      Promise.reject(new Error("the host's own rejection"));
      try { null.amount; } catch (err) { PassItOnBeacon.renderError(err); }
    </script></body></html>`;
  const page = await browser.newPage();
  const beacons = [];
  const bodies = [];
  page.on("request", (r) => {
    if (r.url().includes("/v1/beacon?")) {
      beacons.push(r.url());
      bodies.push(r.postData() || "");
    }
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const sent = page.waitForRequest((r) => r.url().includes("/v1/beacon"), { timeout: 10_000 });
  await page.goto(siteUrl("/give"), { waitUntil: "load" });
  await sent; // after the snippet's one-second batching delay
  const w = ['organization_id="org-browser"', 'widget_id="widget-456"'];
  const s = await eventually(async () => {
    const s = await samples(exporter.url);
    return valueOf(s, "passiton_widget_errors_total", ...w, 'kind="load"') >= 1 &&
      valueOf(s, "passiton_widget_errors_total", ...w, 'kind="script"') >= 1 &&
      valueOf(s, "passiton_widget_errors_total", ...w, 'kind="render"') >= 1 &&
      valueOf(s, "passiton_widget_loads_total", ...w) >= 1
      ? s
      : null;
  }, "widget series from the page").catch(async (err) => {
    const s = await samples(exporter.url);
    const widget = [...s].filter(([k, v]) => k.includes("widget") && v);
    throw new Error(`${err.message}\nbeacons: ${beacons.join()}\nerrors: ${errors.join()}\n${widget.join("\n")}\n${exporter.stderr()}`);
  });
  assert.equal(valueOf(s, "passiton_widget_errors_total", ...w, 'kind="load"'), 1);
  assert.equal(valueOf(s, "passiton_widget_errors_total", ...w, 'kind="script"'), 1);
  assert.equal(valueOf(s, "passiton_widget_errors_total", ...w, 'kind="render"'), 1);
  assert.equal(valueOf(s, "passiton_widget_loads_total", ...w), 1);
  assert.equal(valueOf(s, "passiton_widget_load_duration_seconds_count", w[0]), 1);
  await page.close();
  assert.ok(beacons.length >= 1 && beacons.every((u) => u.endsWith(`/v1/beacon?key=${encodeURIComponent(beaconKey("org-browser", "widget-456"))}`)), beacons.join());
  const sentText = bodies.join("\n");
  assert.ok(sentText.includes("undefinedWidgetFunction") && sentText.includes("/widget/missing.js"), sentText);
  for (const hosts of ["undefinedHostFunction", "host-missing.png", "the host's own rejection"]) {
    assert.ok(!sentText.includes(hosts), `${hosts} was reported: ${sentText}`);
  }
  // the page's own errors, nothing from the snippet
  assert.deepEqual(errors.sort(), [
    "the host's own rejection",
    "undefinedHostFunction is not defined",
    "undefinedWidgetFunction is not defined",
  ]);
});

test("in the widget's own iframe every error of the frame is the widget's", async () => {
  pages["/frame"] = `<!doctype html><html><head>
    <script src="${exporter.publicUrl}/v1/beacon.js" data-organization-id="org-frame"
            data-widget-id="widget-frame" data-key="${beaconKey("org-frame", "widget-frame")}"></script>
    </head><body><script>setTimeout(function () { undefinedFrameFunction(); }, 0);</script></body></html>`;
  pages["/host-with-frame"] = `<!doctype html><html><body>
    <script>setTimeout(function () { undefinedHostFunction(); }, 0);</script>
    <iframe src="/frame"></iframe></body></html>`;
  const page = await browser.newPage();
  const bodies = [];
  page.on("request", (r) => {
    if (r.url().includes("/v1/beacon?")) bodies.push(r.postData() || "");
  });
  await page.goto(siteUrl("/host-with-frame"), { waitUntil: "load" });
  const w = ['organization_id="org-frame"', 'widget_id="widget-frame"'];
  await eventually(async () => {
    const s = await samples(exporter.url);
    return valueOf(s, "passiton_widget_errors_total", ...w, 'kind="script"') >= 1 &&
      valueOf(s, "passiton_widget_loads_total", ...w) >= 1 ? s : null;
  }, "the frame's error");
  await page.close();
  const sentText = bodies.join("\n");
  assert.ok(sentText.includes("undefinedFrameFunction"), sentText);
  assert.ok(!sentText.includes("undefinedHostFunction"), sentText);
});

test("the package's browser entry: the design's widget snippet, sent by sendBeacon with the key", async () => {
  pages["/app"] = `<!doctype html><html><body><script type="module">
    import { monitoring } from "/dist/browser.js";
    await monitoring.initialize({ url: ${JSON.stringify(exporter.publicUrl)}, key: ${JSON.stringify(beaconKey("org-app", "widget-789"))} });
    try {
      throw new Error("widget bundle failed to load");
    } catch (error) {
      monitoring.widget.monitorWidgetLoadError({
        organizationId: "org-app",
        widgetId: "widget-789",
        url: window.location.href,
        error: error.message,
      });
    }
    monitoring.widget.monitorWidgetLoadPerformance({ organizationId: "org-app", widgetId: "widget-789", loadTime: 420 });
    monitoring.payment.monitorPaymentFailures({ organizationId: "org-app" }); // not for browsers: counted, not sent
    window.statsBefore = monitoring.stats();
    window.flushed = await monitoring.flush(5000);
    window.statsAfter = monitoring.stats();
  </script></body></html>`;
  const page = await browser.newPage();
  const beacons = [];
  page.on("request", (r) => {
    if (r.url().includes("/v1/beacon")) beacons.push([r.url(), r.postData()]);
  });
  await page.goto(siteUrl("/app"), { waitUntil: "load" });
  await page.waitForFunction(() => window.statsAfter !== undefined, null, { timeout: 10_000 });
  const { flushed, statsAfter } = await page.evaluate(() => ({ flushed: window.flushed, statsAfter: window.statsAfter }));
  assert.equal(flushed, true);
  assert.deepEqual(statsAfter, { queued: 0, sent: 2, rejected: 0, failed: 0, dropped: 0, invalid: 1 });
  await page.close();
  const s = await eventually(async () => {
    const s = await samples(exporter.url);
    return valueOf(s, "passiton_widget_load_duration_seconds_count", 'organization_id="org-app"') >= 1 ? s : null;
  }, "widget series from the app page");
  assert.equal(valueOf(s, "passiton_widget_errors_total", 'organization_id="org-app"', 'widget_id="widget-789"', 'kind="load"'), 1);
  assert.equal(beacons.length, 1);
  assert.ok(beacons[0][0].endsWith(`/v1/beacon?key=${encodeURIComponent(beaconKey("org-app", "widget-789"))}`), beacons[0][0]);
  assert.deepEqual(
    JSON.parse(beacons[0][1]).map((e) => e.type),
    ["widget.load_error", "widget.loaded"],
  );
});

test("the package's browser entry hands its queue to the browser when the page is left", async () => {
  pages["/leaving"] = `<!doctype html><html><body><script type="module">
    import { monitoring } from "/dist/browser.js";
    await monitoring.initialize({ url: ${JSON.stringify(exporter.publicUrl)}, key: ${JSON.stringify(beaconKey("org-leaving", "w-1"))}, flushInterval: 600000 });
    monitoring.widget.monitorWidgetRenderError({ organizationId: "org-leaving", widgetId: "w-1", error: "boom" });
    window.queued = monitoring.stats().queued;
  </script></body></html>`;
  pages["/elsewhere"] = "<!doctype html><html><body>elsewhere</body></html>";
  const page = await browser.newPage();
  await page.goto(siteUrl("/leaving"), { waitUntil: "load" });
  await page.waitForFunction(() => window.queued === 1, null, { timeout: 10_000 });
  await page.goto(siteUrl("/elsewhere"), { waitUntil: "load" }); // pagehide: nothing waits for the 10-minute timer
  await eventually(async () => {
    const s = await samples(exporter.url);
    return valueOf(s, "passiton_widget_errors_total", 'organization_id="org-leaving"', 'kind="render"') === 1;
  }, "the render error sent on pagehide");
  await page.close();
});
