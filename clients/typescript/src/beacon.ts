// The widget snippet served as GET /v1/beacon.js — BUILT from this file into exporter/static/beacon.js
// by scripts/build-beacon.mjs (ES5, minified, no dependencies, never throws into the page). Usage:
//   <script src="https://EXPORTER/v1/beacon.js" data-organization-id="org" data-widget-id="w"
//           data-key="KEY"></script>     (`data-beacon-key` is read too)
// or PassItOnBeacon.init({endpoint, organizationId, widgetId, key, widgetSrc}); hooks: loaded(ms),
// loadError(err), renderError(err), flush(). `key` is the widget's key from
// `passiton-monitoring beacon-key`.
// Only the widget's own failures are reported, never the host page's: a script error whose file or
// stack is under one of the widget's script URLs (`data-widget-src` / `widgetSrc`: URL prefixes,
// comma-separated), a resource of the widget that failed to load, an unhandled rejection whose
// stack passes through the widget; or, when the snippet runs in the widget's own iframe
// (`data-widget-frame`, by default: when this window is a frame), every error of that window.
// The hooks are always reported: the widget calls them itself.
import { postBeacon } from "./beacon-transport.js";

interface BeaconOptions {
  endpoint?: unknown;
  organizationId?: unknown;
  widgetId?: unknown;
  key?: unknown;
  widgetSrc?: unknown;
  frame?: unknown;
  maxReports?: unknown;
  flushDelay?: unknown;
  autoLoad?: unknown;
}
type Fields = { [field: string]: unknown };
type AnyFn = (a?: any, b?: any) => any;

(function (w: any) {
  "use strict";
  if (!w || (w.PassItOnBeacon && w.PassItOnBeacon.init)) return;
  var d = w.document,
    MAX = 200;
  var cfg: { endpoint: string; org: string; widget: string; key: string | null } | null = null;
  var queue: Fields[] = [],
    early: Array<[string, Fields, string | undefined]> = [],
    prefixes: string[] = [],
    frame = false,
    seen: { [key: string]: boolean } = {},
    used = 0,
    timer: any = null,
    loadSent = false;
  var cap = 20,
    delay = 1000;

  function safe<F extends AnyFn>(fn: F): F {
    return function (a?: any, b?: any) {
      try {
        return fn(a, b);
      } catch (e) {
        /* never break the page */
      }
    } as F;
  }
  function cut(v: unknown, n: number): string {
    var s = String(v);
    return s.length > n ? s.slice(0, n) : s;
  }
  function bare(url: unknown): string | undefined {
    return url ? cut(String(url).split(/[?#]/)[0], 500) : undefined;
  }
  function text(err: any): string {
    if (err === undefined || err === null || err === "") return "unknown";
    return cut(err.message !== undefined ? (err.name ? err.name + ": " : "") + err.message : err, MAX);
  }

  var flush = safe(function () {
    w.clearTimeout(timer);
    timer = null;
    if (!cfg || !queue.length) return;
    var body = JSON.stringify(queue);
    queue = [];
    postBeacon(w, cfg.endpoint, cfg.key, body);
  });

  function absolute(url: string): string {
    if (!d.createElement) return url;
    var a = d.createElement("a");
    a.href = url;
    return a.href || url;
  }
  // whether what an error carries (file, stack, resource URL) says it is the widget's
  function ours(evidence: string): boolean {
    if (frame) return true;
    for (var i = 0; i < prefixes.length; i++) if (evidence.indexOf(prefixes[i]!) >= 0) return true;
    return false;
  }

  // evidence: for an error the page raised, where it came from (undefined: a hook, the widget's own)
  function report(type: string, fields: Fields, evidence?: string): unknown {
    if (!cfg) return early.length < cap && early.push([type, fields, evidence]);
    if (evidence !== undefined && !ours(evidence)) return;
    var id = type + fields.error + fields.source;
    if (seen[id] || used >= cap) return;
    seen[id] = true;
    used++;
    var l = w.location,
      e: Fields = {
        type: type,
        organization_id: cfg.org,
        widget_id: cfg.widget,
        timestamp: new Date().getTime(),
        url: bare(l && (l.origin ? l.origin + l.pathname : l.href)),
      };
    for (var k in fields) if (fields[k] !== undefined) e[k] = fields[k];
    queue.push(e);
    if (timer === null) timer = w.setTimeout(flush, delay);
  }
  function failed(type: string, source?: string) {
    return safe(function (err: unknown, src?: string) {
      report(type, { error: text(err), source: src || source });
    });
  }
  function stackOf(err: any): string {
    return err && typeof err.stack === "string" ? err.stack : "";
  }

  var loaded = safe(function (ms?: unknown) {
    var p = w.performance,
      t = p && p.timing,
      nav = p && p.getEntriesByType && p.getEntriesByType("navigation")[0];
    if (typeof ms !== "number") {
      ms =
        nav && nav.loadEventStart > 0
          ? nav.loadEventStart
          : t && t.loadEventStart > 0
            ? t.loadEventStart - t.navigationStart
            : p && p.now();
    }
    var n = ms as number;
    if (loadSent || !(n >= 0 && n < Infinity)) return;
    loadSent = true;
    report("widget.loaded", { duration_ms: Math.round(n) });
  });

  var init = safe(function (o: BeaconOptions) {
    var endpoint = String(o.endpoint || "").replace(/\/+$/, "");
    if (cfg || !endpoint || !o.organizationId || !o.widgetId) return;
    if ((o.maxReports as number) >= 0) cap = o.maxReports as number;
    if ((o.flushDelay as number) >= 0) delay = o.flushDelay as number;
    cfg = {
      endpoint: endpoint,
      org: cut(o.organizationId, 128),
      widget: cut(o.widgetId, 128),
      key: o.key ? cut(o.key, 64) : null,
    };
    var src = o.widgetSrc,
      list = typeof src === "string" ? src.split(",") : src instanceof Array ? src : [];
    for (var j = 0; j < list.length; j++) {
      var prefix = String(list[j]).replace(/^\s+|\s+$/g, "");
      if (prefix) prefixes.push(absolute(prefix));
    }
    if (o.frame !== undefined) frame = o.frame === true;
    else
      safe(function () {
        frame = !!w.top && w.top !== w;
      })();
    for (var i = 0; i < early.length; i++) report(early[i]![0], early[i]![1], early[i]![2]);
    early = [];
    function later() {
      w.setTimeout(loaded, 0);
    }
    if (o.autoLoad === false) return;
    if (d.readyState === "complete") later();
    else w.addEventListener("load", later);
  });

  safe(function () {
    w.addEventListener(
      "error",
      safe(function (ev: any) {
        var el = ev.target;
        if (el && el !== w && el.tagName) {
          // a script, image or stylesheet failed to load: the widget's, or not reported
          var url = String(el.src || el.href || "");
          return report(
            "widget.load_error",
            { error: String(el.tagName).toLowerCase() + " failed to load", source: bare(url) },
            url,
          );
        }
        report(
          "widget.script_error",
          {
            error: text(ev.error || ev.message),
            source: ev.filename ? bare(ev.filename) + ":" + (ev.lineno || 0) : undefined,
          },
          String(ev.filename || "") + "\n" + stackOf(ev.error),
        );
      }),
      true,
    );
    w.addEventListener(
      "unhandledrejection",
      safe(function (ev: any) {
        report(
          "widget.script_error",
          { error: text(ev.reason), source: "unhandledrejection" },
          stackOf(ev.reason),
        );
      }),
    );
    w.addEventListener("pagehide", flush);
    d.addEventListener("visibilitychange", function () {
      if (d.visibilityState === "hidden") flush();
    });
  })();

  w.PassItOnBeacon = {
    init: init,
    loaded: loaded,
    flush: flush,
    loadError: failed("widget.load_error", "hook"),
    renderError: failed("widget.render_error", "hook"),
  };

  safe(function () {
    // configured by this script tag's data attributes
    var tag = d.currentScript,
      src = tag.src || "",
      at = src.indexOf("/v1/beacon.js");
    function attr(n: string) {
      return tag.getAttribute("data-" + n);
    }
    init({
      endpoint: attr("endpoint") || (at > 0 ? src.slice(0, at) : ""),
      organizationId: attr("organization-id"),
      widgetId: attr("widget-id"),
      key: attr("key") || attr("beacon-key"),
      widgetSrc: attr("widget-src") || "",
      frame: attr("widget-frame") === null ? undefined : attr("widget-frame") === "true",
      autoLoad: attr("auto-load") !== "false",
    });
  })();
})(typeof window !== "undefined" ? window : this);
