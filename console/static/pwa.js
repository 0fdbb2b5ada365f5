// The console as a web app (service worker, Web Push on this device), desktop alerts with an
// optional sound for new critical incidents on the Now page, and the theme toggle.
// Progressive enhancement: every page works without it.
(function () {
  "use strict";
  var PREFIX = "/console";
  var store = {
    get: function (k) { try { return localStorage.getItem("passiton." + k); } catch (e) { return null; } },
    set: function (k, v) { try { localStorage.setItem("passiton." + k, v); } catch (e) { /* private mode */ } },
  };
  var worker = null;
  if ("serviceWorker" in navigator && window.isSecureContext) {
    worker = navigator.serviceWorker.register(PREFIX + "/sw.js", { scope: PREFIX + "/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .catch(function () { return null; });
  }

  // --- theme: auto (the system's), light, dark -----------------------------------------
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function applyTheme(choice) {
    var dark = choice === "dark" || (choice === "auto" && media && media.matches);
    document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
    document.documentElement.setAttribute("data-theme-choice", choice);
    var toggle = document.querySelector("[data-theme-toggle]");
    if (toggle) toggle.setAttribute("aria-label", "theme: " + choice + " (change)");
    document.querySelectorAll("[data-theme-choice]").forEach(function (input) {
      if (input.tagName === "INPUT") input.checked = input.value === choice;
    });
  }
  function setTheme(choice) { store.set("theme", choice); applyTheme(choice); }
  var themes = ["auto", "dark", "light"];
  var toggle = document.querySelector("[data-theme-toggle]");
  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var now = store.get("theme") || "auto";
      setTheme(themes[(themes.indexOf(now) + 1) % themes.length]);
    });
  }
  document.querySelectorAll("input[data-theme-choice]").forEach(function (input) {
    input.addEventListener("change", function () { if (input.checked) setTheme(input.value); });
  });
  if (media && media.addEventListener) {
    media.addEventListener("change", function () { applyTheme(store.get("theme") || "auto"); });
  }
  applyTheme(store.get("theme") || "auto");

  // --- Web Push on this device (the device page) ----------------------------------------
  function keyBytes(base64url) {
    var text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }
  function post(url, fields) {
    var form = new URLSearchParams();
    form.set("csrf", document.getElementById("csrf").value);
    Object.keys(fields).forEach(function (k) { form.set(k, fields[k]); });
    return fetch(url, { method: "POST", body: form, credentials: "same-origin" }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error("HTTP " + r.status + ": " + t.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").slice(0, 200)); });
      return r;
    });
  }
  var push = document.getElementById("push");
  if (push && push.getAttribute("data-key")) {
    var state = push.querySelector("[data-push-state]");
    var on = push.querySelector("[data-push-on]");
    var off = push.querySelector("[data-push-off]");
    var say = function (text) { if (state) state.textContent = text; };
    if (!worker || !("PushManager" in window)) {
      say(window.isSecureContext ? "This browser cannot receive push notifications." :
        "Push needs the console over https (or localhost).");
    } else {
      worker.then(function (reg) {
        if (!reg) { say("The service worker did not start."); return; }
        return reg.pushManager.getSubscription().then(function (sub) {
          var listed = sub && document.querySelector('tr[data-endpoint="' + CSS.escape(sub.endpoint) + '"]');
          say(sub && listed ? "On for this browser." : "Off for this browser.");
          on.hidden = Boolean(sub && listed); off.hidden = !(sub && listed);
          on.addEventListener("click", function () {
            Notification.requestPermission().then(function (permission) {
              if (permission !== "granted") throw new Error("notifications are blocked for this site");
              return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(push.getAttribute("data-key")) });
            }).then(function (created) {
              var json = created.toJSON();
              return post(push.getAttribute("data-subscribe"), { endpoint: json.endpoint, p256dh: json.keys.p256dh, auth: json.keys.auth });
            }).then(function () { window.location.reload(); })
              .catch(function (e) { say("Could not turn on: " + e.message); });
          });
          off.addEventListener("click", function () {
            var endpoint = sub.endpoint;
            sub.unsubscribe().catch(function () { return null; }).then(function () {
              return post(push.getAttribute("data-unsubscribe"), { endpoint: endpoint });
            }).then(function () { window.location.reload(); })
              .catch(function (e) { say("Could not turn off: " + e.message); });
          });
        });
      });
    }
  }

  // --- desktop alerts and sound for new critical incidents -------------------------------
  var audio = null;
  function unlockAudio() {
    if (audio || !(window.AudioContext || window.webkitAudioContext)) return;
    audio = new (window.AudioContext || window.webkitAudioContext)();
  }
  function beep() {
    if (!audio) return;
    if (audio.state === "suspended") audio.resume();
    [0, 0.25].forEach(function (at) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(audio.currentTime + at); osc.stop(audio.currentTime + at + 0.15);
    });
  }
  // browsers start sound only after the user touched the page once
  ["click", "keydown", "touchstart"].forEach(function (type) {
    document.addEventListener(type, function () { if (store.get("sound") === "1") unlockAudio(); }, { once: true, capture: true });
  });
  function notify(title, body, url, tag) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    var options = { body: body, tag: tag, icon: PREFIX + "/static/icon-192.png", data: { url: url, tag: tag } };
    (worker || Promise.resolve(null)).then(function (reg) {
      if (reg) return reg.showNotification(title, options);
      var n = new Notification(title, options);
      n.onclick = function () { window.focus(); window.location = url; };
    });
  }
  function announce(incidents) {
    incidents.forEach(function (i) {
      if (store.get("desktop") === "1") notify("CRITICAL #" + i.id + ": " + i.title, "New critical incident", PREFIX + "/incidents/" + i.id, "incident-" + i.id);
    });
    if (incidents.length && store.get("sound") === "1") beep();
  }
  function criticals(root) {
    var found = {};
    root.querySelectorAll("tbody.incident.sev-critical.state-firing[data-incident]").forEach(function (b) {
      var link = b.querySelector(".title a");
      found[b.getAttribute("data-incident")] = link ? link.textContent.trim() : "";
    });
    return found;
  }
  var live = document.getElementById("live");
  if (live) {
    // Whatever the refresh does to the list (replaces it, patches it), the critical firing
    // incidents on the page are compared with those seen; those on screen when the page
    // opened are not new.
    var seen = criticals(document);
    new MutationObserver(function () {
      var current = criticals(document), fresh = [];
      Object.keys(current).forEach(function (id) {
        if (!(id in seen)) fresh.push({ id: id, title: current[id] });
        seen[id] = current[id];
      });
      announce(fresh);
    }).observe(live.parentNode, { childList: true, subtree: true, attributes: true, attributeFilter: ["class"] });
  }
  var desktop = document.getElementById("desktop");
  if (desktop) {
    var status = desktop.querySelector("[data-desktop-state]");
    var show = function () {
      var permission = "Notification" in window ? Notification.permission : "unsupported";
      status.textContent = permission === "denied" ? "Notifications are blocked for this site in the browser's settings." :
        permission === "unsupported" ? "This browser has no notifications." : "";
    };
    desktop.querySelectorAll("input[data-pref]").forEach(function (box) {
      var pref = box.getAttribute("data-pref");
      box.checked = store.get(pref) === "1";
      box.addEventListener("change", function () {
        store.set(pref, box.checked ? "1" : "0");
        if (pref === "sound" && box.checked) { unlockAudio(); beep(); }
        if (pref === "desktop" && box.checked && "Notification" in window && Notification.permission === "default") {
          Notification.requestPermission().then(show);  // asked on this click, never on load
        }
        show();
      });
    });
    desktop.querySelector("[data-test-alert]").addEventListener("click", function () {
      unlockAudio();
      var ask = "Notification" in window && Notification.permission === "default" ? Notification.requestPermission() : Promise.resolve();
      ask.then(function () {
        show();
        notify("CRITICAL: a test", "This is how a new critical incident looks.", PREFIX + "/", "test");
        if (store.get("sound") === "1") beep();
      });
    });
    show();
  }
})();
