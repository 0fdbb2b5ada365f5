// The Express middleware in a real Express server and the Next.js route-handler wrapper behind a
// real node:http server report route TEMPLATES, methods, statuses and durations to a real exporter.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import express from "express";
import { createClient, expressMiddleware, normalizeRoute, withMonitoring } from "../dist/index.js";
import { TOKEN, WAIT, samples, startExporter, valueOf } from "./support/exporter.mjs";

let exporter;
before(async () => {
  exporter = await startExporter();
});
after(async () => {
  await exporter?.stop();
});

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

const DURATION = "passiton_endpoint_request_duration_seconds_count";

test("Express: the matched route template, never the raw path; unmatched and ignored routes", async () => {
  const monitoring = createClient({ url: exporter.url, token: TOKEN, flushInterval: 3_600_000 });
  const app = express();
  app.use(expressMiddleware(monitoring, { ignoreRoutes: ["/healthz"] }));
  app.get("/healthz", (_req, res) => res.send("ok"));
  app.get("/api/donations/:id", (req, res) => res.json({ id: req.params.id }));
  app.post("/api/donations", (_req, res) => res.status(201).end());
  const orgs = express.Router();
  orgs.get("/:org/widgets/:widget", () => {
    throw new Error("render failed");
  });
  app.use("/api/orgs", orgs);
  app.use((err, _req, res, _next) => res.status(500).send(String(err.message)));
  const server = createServer(app);
  const base = await listen(server);
  try {
    for (const id of ["1", "2", "abc"]) assert.equal((await fetch(`${base}/api/donations/${id}?email=x`)).status, 200);
    assert.equal((await fetch(`${base}/api/donations`, { method: "POST" })).status, 201);
    assert.equal((await fetch(`${base}/api/orgs/org-9/widgets/w-1`)).status, 500);
    assert.equal((await fetch(`${base}/no/such/page`)).status, 404);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the 'finish' events run after the responses
    assert.equal(await monitoring.flush(WAIT), true);
    assert.equal(monitoring.stats().sent, 6);
    const s = await samples(exporter.url);
    assert.equal(valueOf(s, DURATION, 'route="/api/donations/:id"', 'method="GET"', 'status_class="2xx"'), 3);
    assert.equal(valueOf(s, DURATION, 'route="/api/donations"', 'method="POST"', 'status_class="2xx"'), 1);
    assert.equal(valueOf(s, DURATION, 'route="/api/orgs/:org/widgets/:widget"', 'method="GET"', 'status_class="5xx"'), 1);
    assert.equal(valueOf(s, DURATION, 'route="/unmatched"', 'status_class="4xx"'), 1);
    assert.equal(valueOf(s, DURATION, 'route="/healthz"'), 0);
    for (const key of s.keys()) assert.ok(!/donations\/(1|2|abc)|org-9/.test(key), `raw path in ${key}`);
  } finally {
    server.close();
    await monitoring.close();
  }
});

test("Next.js route handlers: the file's route template, the status, 500 when the handler throws", async () => {
  const monitoring = createClient({ url: exporter.url, token: TOKEN, flushInterval: 3_600_000 });
  // app/api/widgets/[id]/route.ts
  const GET = withMonitoring(monitoring, "/api/widgets/[id]", async (_request, { params }) =>
    Response.json({ id: params.id }),
  );
  const DELETE = withMonitoring(monitoring, "/api/widgets/[id]", async () => {
    throw new Error("not allowed");
  });
  const handlers = { GET, DELETE };
  // The part of Next.js that matters here: a Request in, the handler's Response out.
  const server = createServer(async (req, res) => {
    const request = new Request(`http://localhost${req.url}`, { method: req.method });
    const id = req.url.split("/").pop();
    try {
      const response = await handlers[req.method](request, { params: { id } });
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch {
      res.writeHead(500).end();
    }
  });
  const base = await listen(server);
  try {
    assert.equal((await fetch(`${base}/api/widgets/w-17`)).status, 200);
    assert.equal((await fetch(`${base}/api/widgets/w-18`, { method: "DELETE" })).status, 500);
    assert.equal(await monitoring.flush(WAIT), true);
    const s = await samples(exporter.url);
    // reported the Express way: one label value for one route, whichever framework serves it
    assert.equal(valueOf(s, DURATION, 'route="/api/widgets/:id"', 'method="GET"', 'status_class="2xx"'), 1);
    assert.equal(valueOf(s, DURATION, 'route="/api/widgets/:id"', 'method="DELETE"', 'status_class="5xx"'), 1);
    assert.equal(valueOf(s, DURATION, 'route="/api/widgets/[id]"'), 0);
  } finally {
    server.close();
    await monitoring.close();
  }
});

test("plain node:http (Connect-style) with the application's own router names the template", async () => {
  const monitoring = createClient({ url: exporter.url, token: TOKEN, flushInterval: 3_600_000 });
  const middleware = expressMiddleware(monitoring, {
    routeOf: (req) => (/^\/give\/[^/]+$/.test(req.url.split("?")[0]) ? "/give/:org" : undefined),
  });
  const server = createServer((req, res) => middleware(req, res, () => res.writeHead(req.url.startsWith("/give/") ? 200 : 404).end()));
  const base = await listen(server);
  try {
    assert.equal((await fetch(`${base}/give/org-1?amount=5`)).status, 200);
    assert.equal((await fetch(`${base}/elsewhere`)).status, 404);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await monitoring.flush(WAIT), true);
    const s = await samples(exporter.url);
    assert.equal(valueOf(s, DURATION, 'route="/give/:org"', 'method="GET"', 'status_class="2xx"'), 1);
    assert.ok(valueOf(s, DURATION, 'route="/unmatched"', 'status_class="4xx"') >= 1);
  } finally {
    server.close();
    await monitoring.close();
  }
});

test("a failing monitoring client never affects the response", async () => {
  const broken = {
    dashboard: {
      monitorEndpointHealth() {
        throw new Error("broken sink");
      },
    },
  };
  const app = express();
  app.use(expressMiddleware(broken));
  app.get("/x", (_req, res) => res.send("fine"));
  const server = createServer(app);
  const base = await listen(server);
  try {
    const response = await fetch(`${base}/x`);
    assert.equal(await response.text(), "fine");
    const handler = withMonitoring(broken, "/y", async () => new Response("also fine"));
    assert.equal(await (await handler(new Request("http://localhost/y"))).text(), "also fine");
  } finally {
    server.close();
  }
});

test("route names: Next.js [id], [...slug], [[...slug]], (group) and Express 5 wildcards become :id and *", () => {
  const cases = {
    "/api/donations/[id]": "/api/donations/:id",
    "/api/donations/:id": "/api/donations/:id",
    "/api/orgs/[org]/widgets/[widget]": "/api/orgs/:org/widgets/:widget",
    "/docs/[...slug]": "/docs/*",
    "/docs/[[...slug]]": "/docs/*",
    "/docs/*": "/docs/*",
    "/docs/*splat": "/docs/*",
    "/docs{/*splat}": "/docs/*",
    "/(admin)/api/donations/[id]": "/api/donations/:id",
    "/(marketing)": "/",
    "/": "/",
    unmatched: "unmatched",
    "/users/:id(\\d+)": "/users/:id(\\d+)",
  };
  for (const [given, expected] of Object.entries(cases)) assert.equal(normalizeRoute(given), expected, given);
});

test("one route served by Next.js and by Express is one series, /api/donations/:id", async () => {
  const monitoring = createClient({ url: exporter.url, token: TOKEN, flushInterval: 3_600_000 });
  const app = express();
  app.use(expressMiddleware(monitoring));
  app.get("/api/one-route/:id", (_req, res) => res.json({}));
  app.get("/api/one-route-docs/*", (_req, res) => res.json({}));
  const server = createServer(app);
  const base = await listen(server);
  const next = withMonitoring(monitoring, "/api/one-route/[id]", async () => Response.json({}));
  const nextDocs = withMonitoring(monitoring, "/api/one-route-docs/[...slug]", async () => Response.json({}));
  try {
    assert.equal((await fetch(`${base}/api/one-route/7`)).status, 200);
    assert.equal((await fetch(`${base}/api/one-route-docs/a/b`)).status, 200);
    await next(new Request("http://localhost/api/one-route/8"), { params: { id: "8" } });
    await nextDocs(new Request("http://localhost/api/one-route-docs/c/d"), { params: { slug: ["c", "d"] } });
    monitoring.dashboard.monitorEndpointHealth("/api/one-route/[id]", 3, 200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(await monitoring.flush(WAIT), true);
    const s = await samples(exporter.url);
    const routes = [...s.keys()]
      .filter((k) => k.startsWith(`${DURATION}{`) && k.includes("one-route"))
      .map((k) => /route="([^"]*)"/.exec(k)[1]);
    assert.deepEqual([...new Set(routes)].sort(), ["/api/one-route-docs/*", "/api/one-route/:id"]);
    assert.equal(valueOf(s, DURATION, 'route="/api/one-route/:id"'), 3);
    assert.equal(valueOf(s, DURATION, 'route="/api/one-route-docs/*"'), 2);
  } finally {
    server.close();
    await monitoring.close();
  }
});
