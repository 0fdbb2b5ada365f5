/* PassItOn widget beacon (ES5, no dependencies, never throws). Usage:
 * <script src="https://EXPORTER/v1/beacon.js" data-organization-id="org" data-widget-id="w"
 *   data-beacon-key="KEY"></script>  (KEY from `passiton-monitoring beacon-key`)
 * or PassItOnBeacon.init({endpoint, organizationId, widgetId, key}); hooks: loaded(ms), loadError(err),
 * renderError(err), flush(). */
(function (w) {
  "use strict";
  if (!w || (w.PassItOnBeacon && w.PassItOnBeacon.init)) return;
  var d = w.document, MAX = 200;
  var cfg = null, queue = [], early = [], seen = {}, used = 0, timer = null, loadSent = false;
  var cap = 20, delay = 1000;

  function safe(fn) {
    return function (a, b) { try { return fn(a, b); } catch (e) { /* never break the page */ } };
  }
  function cut(v, n) { v = String(v); return v.length > n ? v.slice(0, n) : v; }
  function bare(url) { return url ? cut(String(url).split(/[?#]/)[0], 500) : undefined; }
  function text(err) {
    if (err === undefined || err === null || err === "") return "unknown";
    return cut(err.message !== undefined ? (err.name ? err.name + ": " : "") + err.message : err, MAX);
  }

  var flush = safe(function () {
    w.clearTimeout(timer);
    timer = null;
    if (!cfg || !queue.length) return;
    var body = JSON.stringify(queue), n = w.navigator, url = cfg.endpoint + "/v1/beacon" +
      (cfg.key ? "?key=" + encodeURIComponent(cfg.key) : "");
    queue = [];
    try { if (n.sendBeacon(url, body)) return; } catch (e) { /* fall back to fetch */ }
    w.fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit",
      headers: { "Content-Type": "text/plain" } })["catch"](function () {});
  });

  function report(type, fields) {
    if (!cfg) return early.length < cap && early.push([type, fields]);
    var key = type + fields.error + fields.source;
    if (seen[key] || used >= cap) return;
    seen[key] = true;
    used++;
    var l = w.location, e = { type: type, organization_id: cfg.org, widget_id: cfg.widget,
      timestamp: new Date().getTime(), url: bare(l && (l.origin ? l.origin + l.pathname : l.href)) };
    for (var k in fields) if (fields[k] !== undefined) e[k] = fields[k];
    queue.push(e);
    if (timer === null) timer = w.setTimeout(flush, delay);
  }
  function failed(type, source) {
    return safe(function (err, src) { report(type, { error: text(err), source: src || source }); });
  }
  var scriptError = failed("widget.script_error");

  var loaded = safe(function (ms) {
    var p = w.performance, t = p && p.timing, nav = p && p.getEntriesByType &&
      p.getEntriesByType("navigation")[0];
    if (typeof ms !== "number") {
      ms = nav && nav.loadEventStart > 0 ? nav.loadEventStart
        : t && t.loadEventStart > 0 ? t.loadEventStart - t.navigationStart : p && p.now();
    }
    if (loadSent || !(ms >= 0 && ms < Infinity)) return;
    loadSent = true;
    report("widget.loaded", { duration_ms: Math.round(ms) });
  });

  var init = safe(function (o) {
    var endpoint = String(o.endpoint || "").replace(/\/+$/, "");
    if (cfg || !endpoint || !o.organizationId || !o.widgetId) return;
    if (o.maxReports >= 0) cap = o.maxReports;
    if (o.flushDelay >= 0) delay = o.flushDelay;
    cfg = { endpoint: endpoint, org: cut(o.organizationId, 128), widget: cut(o.widgetId, 128),
      key: o.key ? cut(o.key, 64) : "" };
    for (var i = 0; i < early.length; i++) report(early[i][0], early[i][1]);
    early = [];
    function later() { w.setTimeout(loaded, 0); }
    if (o.autoLoad === false) return;
    if (d.readyState === "complete") later();
    else w.addEventListener("load", later);
  });

  safe(function () {
    w.addEventListener("error", safe(function (ev) {
      var el = ev.target;
      if (el && el !== w && el.tagName) { // a script, image or stylesheet failed to load
        return report("widget.load_error", { error: String(el.tagName).toLowerCase() +
          " failed to load", source: bare(el.src || el.href) });
      }
      scriptError(ev.error || ev.message, ev.filename && bare(ev.filename) + ":" + (ev.lineno || 0));
    }), true);
    w.addEventListener("unhandledrejection", safe(function (ev) {
      scriptError(ev.reason, "unhandledrejection");
    }));
    w.addEventListener("pagehide", flush);
    d.addEventListener("visibilitychange", function () {
      if (d.visibilityState === "hidden") flush();
    });
  })();

  w.PassItOnBeacon = { init: init, loaded: loaded, flush: flush,
    loadError: failed("widget.load_error", "hook"), renderError: failed("widget.render_error", "hook") };

  safe(function () { // configured by this script tag's data attributes
    var tag = d.currentScript, src = tag.src || "", at = src.indexOf("/v1/beacon.js");
    function attr(n) { return tag.getAttribute("data-" + n); }
    init({ endpoint: attr("endpoint") || (at > 0 ? src.slice(0, at) : ""),
      organizationId: attr("organization-id"), widgetId: attr("widget-id"), key: attr("beacon-key"),
      autoLoad: attr("auto-load") !== "false" });
  })();
})(typeof window !== "undefined" ? window : this);
