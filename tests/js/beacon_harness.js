// Runs exporter/static/beacon.js in a vm context with a fake window, document and navigator.
// Reads a scenario as JSON on stdin, prints what the beacon sent as JSON on stdout.
//
// Scenario: {script: {src, attrs} | null, topLevel, readyState, sendBeacon: "ok"|"refuse"|"throw"|"missing",
//            fetch: "ok"|"reject"|"missing", performance: {navigation, timing, now} | null,
//            steps: "<JS run inside the page after the beacon loaded>", loadTwice: bool}
// Inside steps: fire(type, fields) dispatches a window event, fireDocument(type) a document event,
// tick() runs every pending timer, PassItOnBeacon is the beacon's global.
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");

const BEACON = path.join(__dirname, "..", "..", "exporter", "static", "beacon.js");

function run(scenario) {
  const sent = [];
  const thrown = [];
  const delays = [];
  const timers = new Map();
  let nextTimer = 1;
  const listeners = { window: [], document: [] };

  function dispatch(list, type, event) {
    for (const [name, fn] of list) {
      if (name !== type) continue;
      try {
        fn(event);
      } catch (err) {
        thrown.push(`listener for ${type} threw: ${err && err.stack}`);
      }
    }
  }

  const attrs = (scenario.script && scenario.script.attrs) || {};
  const document = {
    readyState: scenario.readyState || "loading",
    visibilityState: "visible",
    currentScript: scenario.script
      ? {
          src: scenario.script.src || "",
          getAttribute: (name) => (name in attrs ? attrs[name] : null),
        }
      : null,
    addEventListener: (type, fn) => listeners.document.push([type, fn]),
    // an anchor resolves its href against the page, as in a browser
    createElement: () => {
      let href = "";
      return {
        set href(value) {
          href = new URL(value, window.location.href).href;
        },
        get href() {
          return href;
        },
      };
    },
  };

  const navigator = { userAgent: "harness" };
  if (scenario.sendBeacon !== "missing") {
    navigator.sendBeacon = (url, data) => {
      if (scenario.sendBeacon === "throw") throw new TypeError("sendBeacon blew up");
      if (scenario.sendBeacon === "refuse") return false;
      sent.push({ via: "sendBeacon", url, bodyType: typeof data, body: JSON.parse(data) });
      return true;
    };
  }

  const window = {
    document,
    navigator,
    location: {
      origin: "https://example.org",
      pathname: "/give",
      href: "https://example.org/give?email=donor%40example.org#amount",
    },
    setTimeout: (fn, delay) => {
      const id = nextTimer++;
      delays.push(delay);
      timers.set(id, fn);
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    addEventListener: (type, fn, capture) =>
      listeners.window.push([type, fn, Boolean(capture)]),
  };
  if (scenario.fetch !== "missing") {
    window.fetch = (url, options) => {
      sent.push({
        via: "fetch",
        url,
        bodyType: typeof options.body,
        body: JSON.parse(options.body),
        method: options.method,
        keepalive: options.keepalive,
        credentials: options.credentials,
        headers: options.headers,
      });
      return scenario.fetch === "reject"
        ? Promise.reject(new TypeError("Failed to fetch"))
        : Promise.resolve({ status: 202 });
    };
  }
  const perf = scenario.performance;
  if (perf) {
    window.performance = {
      now: () => perf.now,
      timing: perf.timing || { navigationStart: 0, loadEventStart: 0 },
      getEntriesByType: (kind) => (kind === "navigation" && perf.navigation ? [perf.navigation] : []),
    };
  }
  window.window = window;
  // by default the snippet runs in the widget's own iframe (every error there is the widget's);
  // scenario.topLevel: on the host page, where only the widget's errors are reported
  window.top = scenario.topLevel ? window : { frameOf: "the host page" };
  window.fire = (type, fields) => {
    const event = Object.assign({ type, target: window }, fields || {});
    dispatch(listeners.window, type, event);
  };
  window.fireDocument = (type) => dispatch(listeners.document, type, { type, target: document });
  window.tick = () => {
    for (let round = 0; timers.size && round < 100; round++) {
      const [id, fn] = timers.entries().next().value;
      timers.delete(id);
      try {
        fn();
      } catch (err) {
        thrown.push(`timer threw: ${err && err.stack}`);
      }
    }
  };

  const context = vm.createContext(window);
  const source = fs.readFileSync(BEACON, "utf8");
  for (let i = 0; i < (scenario.loadTwice ? 2 : 1); i++) {
    try {
      vm.runInContext(source, context, { filename: "beacon.js" });
    } catch (err) {
      thrown.push(`loading beacon.js threw: ${err && err.stack}`);
    }
  }
  try {
    vm.runInContext(scenario.steps || "", context, { filename: "steps.js" });
  } catch (err) {
    thrown.push(`steps threw: ${err && err.stack}`);
  }
  return {
    sent,
    thrown,
    delays,
    pendingTimers: timers.size,
    windowListeners: listeners.window.map(([type, , capture]) => [type, capture]),
    global: typeof context.PassItOnBeacon,
  };
}

function es5Check() {
  // Node bundles acorn; parsing as ECMAScript 5 proves the snippet runs on old browsers.
  let acorn;
  try {
    acorn = require("internal/deps/acorn/acorn/dist/acorn");
  } catch (err) {
    return { ok: false, error: `node's bundled acorn is not reachable (run with --expose-internals): ${err.message}` };
  }
  try {
    acorn.parse(fs.readFileSync(BEACON, "utf8"), { ecmaVersion: 5, sourceType: "script" });
    return { ok: true, bytes: fs.statSync(BEACON).size };
  } catch (err) {
    return { ok: false, error: `beacon.js is not ES5: ${err.message}` };
  }
}

async function main() {
  if (process.argv[2] === "--es5") {
    process.stdout.write(JSON.stringify(es5Check()));
    return;
  }
  const input = fs.readFileSync(0, "utf8");
  const result = run(JSON.parse(input));
  await new Promise((resolve) => setImmediate(resolve)); // let rejected fetches settle
  process.stdout.write(JSON.stringify(result));
}

process.on("unhandledRejection", (reason) => {
  process.stdout.write(JSON.stringify({ unhandledRejection: String(reason) }));
  process.exit(3);
});

main();
