// The console's service worker (served at /console/sw.js, scope /console/): shows the on-call
// pages that arrive by Web Push (bridge/channels/webpush.py), with "Acknowledge" on the
// notification itself; a tap opens the incident. No caching: the console needs the server.
"use strict";
var PREFIX = "/console";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// Only the console's own pages open from a notification.
function safeUrl(url) {
  return typeof url === "string" && url.indexOf(PREFIX + "/") === 0 && url.indexOf("//") < 0
    ? url : PREFIX + "/";
}

function readPage(data) {
  if (!data) return { title: "PassItOn", body: "", url: PREFIX + "/" };
  try {
    var page = data.json();
    if (page && typeof page === "object") return page;
  } catch (e) { /* not JSON: shown as text */ }
  return { title: "PassItOn", body: data.text(), url: PREFIX + "/" };
}

// A page (the JSON the bridge sends) as a notification.
function showPage(page) {
  var token = typeof page.token === "string" ? page.token : "";
  return self.registration.showNotification(String(page.title || "PassItOn"), {
    body: String(page.body || ""),
    tag: String(page.tag || ""),
    renotify: Boolean(page.tag),
    requireInteraction: page.severity === "critical" && Boolean(token),
    icon: PREFIX + "/static/icon-192.png",
    badge: PREFIX + "/static/icon-192.png",
    timestamp: Date.now(),
    data: { url: safeUrl(page.url), token: token, incident: page.incident, tag: String(page.tag || "") },
    actions: token ? [{ action: "acknowledge", title: "Acknowledge" }] : [],
  });
}

self.addEventListener("push", function (event) {
  event.waitUntil(showPage(readPage(event.data)));
});

function openPage(url) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    for (var i = 0; i < windows.length; i++) {
      var w = windows[i];
      if (new URL(w.url).pathname === url && "focus" in w) return w.focus();
    }
    return self.clients.openWindow(url);
  });
}

// "Acknowledge": the page's single-use token is the authority (no session, no cookie); the
// answer replaces the notification (same tag).
function acknowledge(data) {
  var form = new URLSearchParams();
  form.set("token", data.token || "");
  var number = data.incident ? " #" + data.incident : "";
  function done(title, body) {
    return self.registration.showNotification(title, {
      body: body, tag: data.tag || "", icon: PREFIX + "/static/icon-192.png",
      data: { url: data.url, incident: data.incident, tag: data.tag || "", token: "" },
    });
  }
  return fetch(PREFIX + "/push/acknowledge", { method: "POST", body: form, credentials: "omit" })
    .then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok) {
          var what = answer.changed ? "Acknowledged" : "Already " + (answer.status || "acknowledged");
          return done(what + number, String(answer.title || ""));
        }
        return done("Not acknowledged" + number, String(answer.error || "HTTP " + response.status));
      });
    })
    .catch(function () { return done("Not acknowledged" + number, "No connection: open the incident."); });
}

// What a click on the notification (or on one of its actions) does; the listener below and
// nothing else calls it.
function handleClick(notification, action) {
  var data = notification.data || {};
  notification.close();
  if (action === "acknowledge" && data.token) return acknowledge(data);
  return openPage(safeUrl(data.url));
}

self.addEventListener("notificationclick", function (event) {
  event.waitUntil(handleClick(event.notification, event.action));
});
