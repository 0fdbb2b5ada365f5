// The client against a REAL exporter process: the design's calls become series, bad calls change
// nothing and never throw, an exporter that is down loses no more than the bounded queue, 429's
// Retry-After and 5xx are retried, and testAlerts() reports what it could verify.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { createClient } from "../dist/index.js";
import { TOKEN, WAIT, domainSeries, freePort, samples, startExporter, valueOf } from "./support/exporter.mjs";

const quiet = { warn() {}, error() {} };

let exporter;
before(async () => {
  exporter = await startExporter();
});
after(async () => {
  await exporter?.stop();
});

function client(options = {}) {
  return createClient({ url: exporter.url, token: TOKEN, flushInterval: 3_600_000, logger: quiet, ...options });
}

describe("the original design's API", () => {
  test("its three snippets, unchanged after the one import, produce their series", async () => {
    const monitoring = client();
    const window = { location: { href: "https://example.org/give?email=donor%40example.org" } };
    const error = new Error("Your card was declined.");
    const paymentData = { organizationId: "org-snippets", amount: 2500, currency: "usd" };

    // Frontend Integration
    monitoring.widget.monitorWidgetLoadError({
      organizationId: "org-snippets",
      widgetId: "widget-456",
      url: window.location.href,
      error: error.message,
    });
    // API Integration (the route template, as the middleware reports it)
    monitoring.dashboard.monitorEndpointHealth("/api/donations/:id", 834, 500);
    // Payment Integration
    await monitoring.payment.monitorPaymentFailures({
      organizationId: paymentData.organizationId,
      amount: paymentData.amount,
      currency: paymentData.currency,
      error: error.message,
    });

    assert.equal(await monitoring.flush(WAIT), true);
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: 3, rejected: 0, failed: 0, dropped: 0, invalid: 0 });
    const s = await samples(exporter.url);
    assert.equal(valueOf(s, "passiton_widget_errors_total", 'organization_id="org-snippets"', 'kind="load"'), 1);
    assert.equal(valueOf(s, "passiton_payment_failures_total", 'organization_id="org-snippets"'), 1);
    assert.equal(
      valueOf(s, "passiton_endpoint_request_duration_seconds_count", 'route="/api/donations/:id"', 'method="GET"', 'status_class="5xx"'),
      1,
    );
    await monitoring.close();
  });

  test("every family method and its alias map to the exporter's event types", async () => {
    const monitoring = client();
    const org = { organizationId: "org-families" };
    const widget = { ...org, widgetId: "w-families" };
    const calls = [
      ["payment.failed", () => monitoring.payment.monitorPaymentFailures({ ...org, declineCode: "insufficient_funds" })],
      ["payment.failed", () => monitoring.payment.failure({ ...org, failureCode: "card_declined", amount: 100, currency: "eur" })],
      ["payment.succeeded", () => monitoring.payment.monitorPaymentSuccess({ ...org, amount: 1000, currency: "usd", durationMs: 900 })],
      ["payment.succeeded", () => monitoring.payment.success(org)],
      ["payment.timeout", () => monitoring.payment.monitorPaymentTimeouts({ ...org, durationMs: 30_000, provider: "stripe" })],
      ["payment.timeout", () => monitoring.payment.timeout(org)],
      ["stripe.webhook_failed", () => monitoring.payment.monitorStripeWebhookFailures({ eventType: "charge.failed", error: new Error("db down") })],
      ["stripe.webhook_failed", () => monitoring.payment.webhookFailed({ eventType: "invoice.paid" })],
      ["widget.load_error", () => monitoring.widget.monitorWidgetLoadError({ ...widget, error: "timeout" })],
      ["widget.load_error", () => monitoring.widget.loadError(widget)],
      ["widget.render_error", () => monitoring.widget.monitorWidgetRenderError({ ...widget, error: new TypeError("x") })],
      ["widget.render_error", () => monitoring.widget.renderError(widget)],
      ["widget.script_error", () => monitoring.widget.monitorWidgetScriptError({ ...widget, source: "https://cdn/x.js:1" })],
      ["widget.script_error", () => monitoring.widget.scriptError(widget)],
      ["widget.loaded", () => monitoring.widget.monitorWidgetLoadPerformance({ ...widget, loadTime: 1200 })],
      ["widget.loaded", () => monitoring.widget.loaded({ ...widget, durationMs: 300, url: "https://example.org/" })],
      ["traffic.request", () => monitoring.traffic.monitorTraffic({ ...org, path: "/give", country: "US", userAgent: "Mozilla/5.0", ip: "203.0.113.9" })],
      ["traffic.request", () => monitoring.traffic.request(org)],
      ["endpoint.request", () => monitoring.dashboard.monitorEndpointHealth("/api/families", 12, 200, "post")],
      ["endpoint.request", () => monitoring.dashboard.endpoint("/api/families", 12, 404)],
      ["auth.failed", () => monitoring.dashboard.monitorAuthenticationFailure({ reason: "invalid_password", ...org, ip: "198.51.100.1" })],
      ["auth.failed", () => monitoring.dashboard.authFailure({ reason: "expired_token" })],
      ["database.error", () => monitoring.dashboard.monitorDatabaseError({ operation: "select", error: "connection refused" })],
      ["database.error", () => monitoring.dashboard.databaseError({ operation: "insert" })],
    ];
    const before = await samples(exporter.url);
    for (const [, call] of calls) assert.equal(call(), undefined);
    assert.equal(await monitoring.flush(WAIT), true);
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: calls.length, rejected: 0, failed: 0, dropped: 0, invalid: 0 });
    const after = await samples(exporter.url);
    const expected = {};
    for (const [type] of calls) expected[type] = (expected[type] ?? 0) + 1;
    for (const [type, count] of Object.entries(expected)) {
      const name = "passiton_exporter_events_accepted_total";
      assert.equal(valueOf(after, name, `type="${type}"`) - valueOf(before, name, `type="${type}"`), count, type);
    }
    await monitoring.close();
  });
});

describe("never in the way", () => {
  test("bad calls are counted, logged once per method, never thrown, and change nothing", async () => {
    const warnings = [];
    const monitoring = client({ logger: { warn: (m) => warnings.push(m), error() {} } });
    const before = domainSeries(await samples(exporter.url));
    const evil = {};
    Object.defineProperty(evil, "organizationId", {
      get() {
        throw new Error("getter blew up");
      },
    });
    const bad = [
      () => monitoring.payment.monitorPaymentFailures(),
      () => monitoring.payment.monitorPaymentFailures(null),
      () => monitoring.payment.monitorPaymentFailures("org-1"),
      () => monitoring.payment.monitorPaymentFailures({ amount: 100 }),
      () => monitoring.payment.monitorPaymentFailures({ organizationId: "" }),
      () => monitoring.payment.monitorPaymentFailures({ organizationId: "o", amount: 12.5 }),
      () => monitoring.payment.monitorPaymentFailures({ organizationId: "o", amount: -1 }),
      () => monitoring.payment.monitorPaymentFailures({ organizationId: "o", currency: "dollars" }),
      () => monitoring.payment.monitorPaymentFailures(evil),
      () => monitoring.payment.success({ organizationId: 42 }),
      () => monitoring.payment.timeout({ organizationId: "o", durationMs: Number.NaN }),
      () => monitoring.widget.monitorWidgetLoadPerformance({ organizationId: "o", widgetId: "w" }),
      () => monitoring.widget.loaded({ organizationId: "o", widgetId: "w", durationMs: Infinity }),
      () => monitoring.widget.loadError({ organizationId: "o" }),
      () => monitoring.traffic.request({ organizationId: "o".repeat(129) }),
      () => monitoring.dashboard.monitorEndpointHealth("/x", 10, 700),
      () => monitoring.dashboard.monitorEndpointHealth("/x", -1, 200),
      () => monitoring.dashboard.monitorEndpointHealth("", 10, 200),
      () => monitoring.dashboard.endpoint(undefined, 10, 200),
      () => monitoring.dashboard.endpoint("/x", "10", 200),
      () => monitoring.dashboard.authFailure({}),
      () => monitoring.dashboard.databaseError({ operation: "x", error: 5 }),
      () => monitoring.record({ type: "payment.refunded", organization_id: "o" }),
      () => monitoring.record(undefined),
    ];
    for (const call of bad) assert.doesNotThrow(call);
    assert.equal(await monitoring.flush(WAIT), true);
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: 0, rejected: 0, failed: 0, dropped: 0, invalid: bad.length });
    assert.deepEqual(domainSeries(await samples(exporter.url)), before);
    // logged once per method, naming the problem
    assert.equal(warnings.filter((w) => w.includes("payment.monitorPaymentFailures")).length, 1);
    assert.match(warnings[0], /organization_id is required|expected an object/);
    await monitoring.close();
  });

  test("free text is truncated like the Python client's, never refused", async () => {
    const monitoring = client();
    monitoring.widget.renderError({ organizationId: "org-long", widgetId: "w", error: "x".repeat(5000), url: "u".repeat(3000) });
    assert.equal(await monitoring.flush(WAIT), true);
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: 1, rejected: 0, failed: 0, dropped: 0, invalid: 0 });
    await monitoring.close();
  });

  test("exporter down: calls never throw and the loss is bounded by the queue; what is kept arrives", async () => {
    const port = await freePort();
    const monitoring = createClient({
      url: `http://127.0.0.1:${port}`,
      token: TOKEN,
      batchSize: 5,
      maxQueue: 20,
      maxRetries: 1000,
      backoff: 20,
      maxBackoff: 100,
      flushInterval: 3_600_000,
      logger: quiet,
    });
    for (let i = 0; i < 100; i++) {
      assert.doesNotThrow(() => monitoring.traffic.request({ organizationId: `org-down-${i % 10}`, path: `/p${i}` }));
    }
    // The calls returned before any send began: the queue holds the newest 20, the rest dropped.
    assert.deepEqual(monitoring.stats(), { queued: 20, sent: 0, rejected: 0, failed: 0, dropped: 80, invalid: 0 });
    const late = await startExporter({ port });
    try {
      assert.equal(await monitoring.flush(WAIT), true);
      assert.deepEqual(monitoring.stats(), { queued: 0, sent: 20, rejected: 0, failed: 0, dropped: 80, invalid: 0 });
      const s = await samples(late.url);
      assert.equal(valueOf(s, "passiton_exporter_events_accepted_total", 'type="traffic.request"'), 20);
      // the newest were kept
      assert.equal(valueOf(s, "passiton_traffic_requests_total", 'organization_id="org-down-9"'), 2);
    } finally {
      await monitoring.close();
      await late.stop();
    }
  });

  test("exporter down for good: retries end, the batch counts as failed, close() returns", async () => {
    const monitoring = createClient({
      url: `http://127.0.0.1:${await freePort()}`,
      token: TOKEN,
      maxRetries: 2,
      backoff: 10,
      logger: quiet,
    });
    monitoring.dashboard.databaseError({ operation: "select" });
    assert.equal(await monitoring.flush(WAIT), false); // done, but nothing was delivered
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: 0, rejected: 0, failed: 1, dropped: 0, invalid: 0 });
    await monitoring.close();
    monitoring.dashboard.databaseError({ operation: "select" });
    assert.equal(monitoring.stats().dropped, 1); // after close: dropped quietly
  });

  test("close() gives up on a server that never answers within its timeout", async () => {
    const hanging = createServer(() => {});
    await new Promise((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    const monitoring = createClient({ url: `http://127.0.0.1:${hanging.address().port}`, logger: quiet });
    monitoring.payment.success({ organizationId: "org-hang" });
    const started = Date.now();
    assert.equal(await monitoring.close(200), false);
    assert.ok(Date.now() - started < 1000, `close(200) took ${Date.now() - started} ms`);
    const stats = monitoring.stats();
    assert.equal(stats.sent, 0);
    assert.equal(stats.queued, 0);
    hanging.closeAllConnections();
    hanging.close();
  });
});

/** A proxy in front of the real exporter that answers the first requests from a script. */
async function scriptedProxy(script) {
  const seen = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    seen.push({ at: Date.now(), body: Buffer.concat(chunks).toString() });
    const scripted = script.shift();
    if (scripted) {
      res.writeHead(scripted.status, { "Content-Type": "application/json", ...(scripted.headers ?? {}) });
      res.end(JSON.stringify({ error: "scripted", message: `scripted ${scripted.status}` }));
      return;
    }
    const upstream = await fetch(`${exporter.url}${req.url}`, {
      method: req.method,
      headers: { "Content-Type": req.headers["content-type"], Authorization: req.headers.authorization ?? "" },
      body: Buffer.concat(chunks),
    });
    res.writeHead(upstream.status, { "Content-Type": "application/json" });
    res.end(await upstream.text());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => server.close() };
}

describe("retries", () => {
  test("429 is retried no sooner than its Retry-After, then the events arrive", async () => {
    const proxy = await scriptedProxy([{ status: 429, headers: { "Retry-After": "1" } }]);
    const monitoring = createClient({ url: proxy.url, token: TOKEN, backoff: 1, logger: quiet });
    monitoring.payment.failure({ organizationId: "org-429", declineCode: "do_not_honor" });
    assert.equal(await monitoring.flush(WAIT), true);
    assert.equal(proxy.seen.length, 2);
    assert.equal(proxy.seen[1].body, proxy.seen[0].body);
    assert.ok(proxy.seen[1].at - proxy.seen[0].at >= 1000, "retried before the Retry-After");
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: 1, rejected: 0, failed: 0, dropped: 0, invalid: 0 });
    const s = await samples(exporter.url);
    assert.equal(valueOf(s, "passiton_payment_failures_total", 'organization_id="org-429"'), 1);
    await monitoring.close();
    proxy.close();
  });

  test("5xx is retried with backoff; other 4xx are not retried", async () => {
    const proxy = await scriptedProxy([{ status: 503 }, { status: 502 }]);
    const monitoring = createClient({ url: proxy.url, token: TOKEN, backoff: 5, logger: quiet });
    monitoring.payment.timeout({ organizationId: "org-5xx" });
    assert.equal(await monitoring.flush(WAIT), true);
    assert.equal(proxy.seen.length, 3);
    assert.equal(monitoring.stats().sent, 1);
    await monitoring.close();

    const warnings = [];
    const logger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    const refused = createClient({ url: exporter.url, token: "wrong-token", backoff: 5, batchSize: 2, logger });
    for (let i = 0; i < 5; i++) refused.payment.timeout({ organizationId: "org-401" });
    assert.equal(await refused.flush(WAIT), false, "flush() must say the events were not delivered");
    assert.deepEqual(refused.stats(), { queued: 0, sent: 0, rejected: 0, failed: 5, dropped: 0, invalid: 0 });
    refused.payment.timeout({ organizationId: "org-401" });
    assert.equal(await refused.flush(WAIT), false);
    // three refused batches, then one more: one warning, naming the problem
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /refused the ingest token \(HTTP 401\).*EXPORTER_INGEST_TOKEN/);
    assert.equal(await refused.close(), true); // nothing left to send
    proxy.close();
  });

  test("a batch too large for the server is split in halves", async () => {
    const proxy = await scriptedProxy([{ status: 413 }]);
    const monitoring = createClient({ url: proxy.url, token: TOKEN, logger: quiet, flushInterval: 3_600_000 });
    for (let i = 0; i < 4; i++) monitoring.traffic.request({ organizationId: "org-413" });
    assert.equal(await monitoring.flush(WAIT), true);
    assert.deepEqual(
      proxy.seen.map((r) => JSON.parse(r.body).length),
      [4, 2, 2],
    );
    assert.equal(monitoring.stats().sent, 4);
    await monitoring.close();
    proxy.close();
  });
});

describe("Retry-After", () => {
  test("a 503 with Retry-After: 30 is not retried before 30 s; flush() and close() stay bounded", async () => {
    const proxy = await scriptedProxy([{ status: 503, headers: { "Retry-After": "30" } }]);
    const monitoring = createClient({ url: proxy.url, token: TOKEN, backoff: 1, maxBackoff: 10, logger: quiet });
    monitoring.payment.timeout({ organizationId: "org-retry-after-30" });
    let started = Date.now();
    assert.equal(await monitoring.flush(1500), false);
    assert.ok(Date.now() - started < 2500);
    assert.equal(proxy.seen.length, 1, "retried before the Retry-After");
    // later batches wait too: the server asked the client to pause, not one batch
    monitoring.payment.timeout({ organizationId: "org-retry-after-30" });
    assert.equal(await monitoring.flush(500), false);
    assert.equal(proxy.seen.length, 1);
    started = Date.now();
    assert.equal(await monitoring.close(300), false);
    assert.ok(Date.now() - started < 1000, `close(300) took ${Date.now() - started} ms`);
    assert.equal(proxy.seen.length, 1);
    const stats = monitoring.stats();
    assert.equal(stats.sent, 0);
    assert.equal(stats.queued, 0);
    proxy.close();
  });

  test("Retry-After beyond maxBackoff is honoured", async () => {
    const proxy = await scriptedProxy([{ status: 429, headers: { "Retry-After": "1" } }]);
    const monitoring = createClient({ url: proxy.url, token: TOKEN, backoff: 1, maxBackoff: 10, logger: quiet });
    monitoring.payment.timeout({ organizationId: "org-retry-after-1" });
    assert.equal(await monitoring.flush(WAIT), true);
    assert.equal(proxy.seen.length, 2);
    assert.ok(proxy.seen[1].at - proxy.seen[0].at >= 1000, "retried before the Retry-After");
    await monitoring.close();
    proxy.close();
  });
});

describe("no exporter URL", () => {
  test("one warning at initialize, then every call is ignored without a request or a warning", async () => {
    const warnings = [];
    const logger = { warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    const monitoring = createClient({ url: "", logger });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /no exporter URL/);
    for (let i = 0; i < 20; i++) monitoring.payment.success({ organizationId: "org-no-url" });
    assert.equal(await monitoring.flush(100), true);
    assert.equal(await monitoring.close(100), true);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.deepEqual(monitoring.stats(), { queued: 0, sent: 0, rejected: 0, failed: 0, dropped: 0, invalid: 0 });
  });
});

describe("batching", () => {
  test("full batches go out at once, the rest after the flush interval", async () => {
    const proxy = await scriptedProxy([]);
    const monitoring = createClient({ url: proxy.url, token: TOKEN, batchSize: 3, flushInterval: 50, logger: quiet });
    for (let i = 0; i < 7; i++) monitoring.traffic.request({ organizationId: "org-batch" });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const sizes = () => proxy.seen.map((r) => JSON.parse(r.body).length);
    const deadline = Date.now() + WAIT;
    while (monitoring.stats().sent < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(sizes(), [3, 3, 1]);
    await monitoring.close();
    proxy.close();
  });
});

describe("testAlerts()", () => {
  test("verifies the exporter and the token, and says what failed", async () => {
    const good = client();
    const result = await good.testAlerts();
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.deepEqual(
      result.checks.map((c) => [c.name, c.ok]),
      [
        ["exporter", true],
        ["ingest", true],
      ],
    );
    const wrong = client({ token: "wrong-token" });
    const refused = await wrong.testAlerts();
    assert.equal(refused.ok, false);
    assert.match(refused.checks[1].detail, /refused the token/);
    const down = createClient({ url: `http://127.0.0.1:${await freePort()}`, logger: quiet });
    const unreachable = await down.testAlerts({ timeout: 2000 });
    assert.equal(unreachable.ok, false);
    assert.equal(unreachable.checks[0].ok, false);
    await Promise.all([good.close(), wrong.close(), down.close()]);
  });
});

describe("Node process exit", () => {
  const script = (body) => `
    import { monitoring } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
    await monitoring.initialize({ url: process.env.URL, token: process.env.TOKEN, flushInterval: 3600000 });
    ${body}
  `;
  async function run(body, signal) {
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, ["--input-type=module", "-e", script(body)], {
      env: { ...process.env, URL: exporter.url, TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    if (signal) {
      await new Promise((resolve) => child.stdout.once("data", resolve));
      child.kill(signal);
    }
    const [code, sig] = await new Promise((resolve) => child.once("exit", (c, s) => resolve([c, s])));
    return { code, sig, out };
  }

  test("what is queued is sent when the program ends without flushing", async () => {
    const { code, out } = await run(`monitoring.payment.success({ organizationId: "org-exit" });`);
    assert.equal(code, 0, out);
    const s = await samples(exporter.url);
    assert.equal(valueOf(s, "passiton_payment_attempts_total", 'organization_id="org-exit"'), 1);
  });

  test("on SIGTERM with no handler of the application's: flushed, then the process dies of the signal", async () => {
    const { sig, out } = await run(
      `monitoring.payment.success({ organizationId: "org-sigterm" }); console.log("ready"); setInterval(() => {}, 1000);`,
      "SIGTERM",
    );
    assert.equal(sig, "SIGTERM", out);
    const s = await samples(exporter.url);
    assert.equal(valueOf(s, "passiton_payment_attempts_total", 'organization_id="org-sigterm"'), 1);
  });
});

describe("never holds the process", () => {
  // The application's last call, then its natural exit: within EXIT_FLUSH_MS (2 s) plus process
  // teardown, whatever the exporter does.
  const sender = `
    import { monitoring } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
    await monitoring.initialize({ url: process.env.URL, token: "t" });
    for (let i = 0; i < 10; i++) monitoring.payment.success({ organizationId: "org-exit-" + i });
    process.stdout.write("last call\\n");
  `;
  // An Express app whose middleware reported 10 requests, the first batch on the wire when the
  // server closes: the natural exit as in issue 18 (61 s refused, 22.7 s never answering).
  const expressApp = `
    import express from "express";
    import { monitoring, expressMiddleware } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
    await monitoring.initialize({ url: process.env.URL, token: "t" });
    const app = express();
    app.use(expressMiddleware(monitoring));
    app.get("/api/donations/:id", (req, res) => res.json({ id: req.params.id }));
    const server = app.listen(0, "127.0.0.1", async () => {
      const base = "http://127.0.0.1:" + server.address().port;
      for (let i = 0; i < 10; i++) await fetch(base + "/api/donations/" + i, { headers: { connection: "close" } });
      setTimeout(() => { server.close(); process.stdout.write("last call\\n"); }, 1100);
    });
  `;
  async function exitAfterLastCall(url, script = sender) {
    const { spawn } = await import("node:child_process");
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url),
      env: { ...process.env, URL: url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let last;
    child.stdout.on("data", (c) => {
      out += c;
      if (last === undefined && out.includes("last call")) last = performance.now();
    });
    child.stderr.on("data", (c) => (out += c));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    return { code, out, ms: performance.now() - last };
  }

  test("10 events to a port refusing connections: exits within 3 s of the last call", async () => {
    const { code, out, ms } = await exitAfterLastCall(`http://127.0.0.1:${await freePort()}`);
    assert.equal(code, 0, out);
    assert.ok(ms < 3000, `exited ${Math.round(ms)} ms after the last call`);
    assert.match(out, /10 events not delivered/);
  });

  for (const [what, script] of [
    ["10 events", sender],
    ["an Express app with a batch on the wire", expressApp],
  ]) {
    test(`${what} to a server that accepts and never answers: exits within 3 s of the last call`, async () => {
      const hanging = createServer(() => {});
      await new Promise((resolve) => hanging.listen(0, "127.0.0.1", resolve));
      try {
        const { code, out, ms } = await exitAfterLastCall(`http://127.0.0.1:${hanging.address().port}`, script);
        assert.equal(code, 0, out);
        assert.ok(ms < 3000, `exited ${Math.round(ms)} ms after the last call`);
      } finally {
        hanging.closeAllConnections();
        hanging.close();
      }
    });
  }

  test("an Express app with a batch being retried, the exporter refusing connections: exits within 3 s", async () => {
    const { code, out, ms } = await exitAfterLastCall(`http://127.0.0.1:${await freePort()}`, expressApp);
    assert.equal(code, 0, out);
    assert.ok(ms < 3000, `exited ${Math.round(ms)} ms after the last call`);
    assert.match(out, /10 events not delivered/);
  });
});

describe("testAlerts() with Alertmanager", () => {
  test("posts a PassItOnTestAlert to a real Alertmanager and reads it back", async () => {
    const { spawn } = await import("node:child_process");
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "ts-client-am-"));
    writeFileSync(join(dir, "alertmanager.yml"), "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n");
    const port = await freePort();
    const am = spawn(
      "prometheus-alertmanager",
      [
        `--config.file=${join(dir, "alertmanager.yml")}`,
        `--storage.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--cluster.listen-address=",
      ],
      { stdio: "ignore" },
    );
    const url = `http://127.0.0.1:${port}`;
    try {
      const deadline = Date.now() + WAIT;
      for (;;) {
        try {
          if ((await fetch(`${url}/-/ready`)).ok) break;
        } catch {
          // not up yet
        }
        assert.ok(Date.now() < deadline, "alertmanager did not start");
        await new Promise((r) => setTimeout(r, 100));
      }
      const monitoring = client();
      const result = await monitoring.testAlerts({ alertmanagerUrl: url, severity: "low" });
      assert.equal(result.ok, true, JSON.stringify(result));
      assert.deepEqual(result.checks.map((c) => c.name), ["exporter", "ingest", "alertmanager"]);
      const alerts = await (await fetch(`${url}/api/v2/alerts?filter=alertname%3D%22PassItOnTestAlert%22`)).json();
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0].labels.category, "system");
      assert.equal(alerts[0].labels.severity, "low");
      await monitoring.close();
    } finally {
      am.kill("SIGTERM");
      await new Promise((r) => am.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
