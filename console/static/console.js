// Progressive enhancement only: every page works without it.
(function () {
  "use strict";
  var store = window.sessionStorage;
  var KEYS = { cursor: "passiton.now.cursor", open: "passiton.now.open", picked: "passiton.now.picked" };
  function load(key, fallback) {
    try { var v = JSON.parse(store.getItem(key)); return v === null ? fallback : v; } catch (e) { return fallback; }
  }
  function save(key, value) {
    try { store.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode: no memory */ }
  }
  function typing(el) {
    if (!el || !el.tagName) return false;
    var t = el.tagName;
    if (t === "TEXTAREA" || t === "SELECT" || el.isContentEditable) return true;
    return t === "INPUT" && !/^(checkbox|radio|button|submit)$/.test(el.type);
  }

  // -- the live Now page: re-fetch every N seconds (not while typing) ----------------------
  // The page carries the alert rows of open incidents and groups only: the fetch names them.
  function fetchLive(scroll) {
    if (!document.getElementById("live")) return;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    document.querySelectorAll("tbody.incident[data-open]").forEach(function (b) {
      if (opened[b.getAttribute("data-key")]) url.searchParams.append("open", b.getAttribute("data-open"));
    });
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok || r.status === 400 ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        var current = document.getElementById("live");
        if (fresh && current) { current.replaceWith(fresh); restore(!!scroll); }
      })
      .catch(function () {
        var stamp = document.querySelector("[data-updated]");
        if (stamp) stamp.textContent += " (refresh failed)";
      });
  }
  function refresh() {
    var live = document.getElementById("live");
    if (!live) return;
    var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 10;
    setInterval(function () { if (!typing(document.activeElement)) fetchLive(); }, seconds * 1000);
  }

  // -- incidents and name groups open in place, remembered (refresh, reload) ----------------
  var opened = load(KEYS.open, {});
  document.querySelectorAll("tbody.incident.open").forEach(function (b) {
    opened[b.getAttribute("data-key")] = true;
  });
  function show(body, open) {
    body.classList.toggle("open", open);
    var link = body.querySelector("a.expand");
    if (link) { link.setAttribute("aria-expanded", String(open)); link.textContent = open ? "\u25BE" : "\u25B8"; }
  }
  function toggle(body) {
    var key = body.getAttribute("data-key");
    opened[key] = !body.classList.contains("open");
    save(KEYS.open, opened);
    show(body, opened[key]);
    if (opened[key] && body.getAttribute("data-loaded") === "0") fetchLive();
  }
  function reopen() {
    document.querySelectorAll("tbody.incident").forEach(function (b) {
      var key = b.getAttribute("data-key");
      if (key in opened) show(b, opened[key]);
    });
  }

  // -- the selection (checkboxes for the bulk form), remembered -----------------------------
  var picked = load(KEYS.picked, []);
  function pickedCount() {
    var bar = document.getElementById("bulk");
    var label = document.querySelector("[data-selected]");
    if (!bar || !label) return;
    bar.classList.toggle("has-selection", picked.length > 0);
    label.innerHTML = "";
    label.appendChild(document.createTextNode("Selection ("));
    var kbd = document.createElement("kbd"); kbd.textContent = "x"; label.appendChild(kbd);
    label.appendChild(document.createTextNode("): " + (picked.length ? picked.length + " selected" : "none")));
  }
  function setPicked(box, on) {
    box.checked = on;
    var i = picked.indexOf(box.value);
    if (on && i < 0) picked.push(box.value);
    if (!on && i >= 0) picked.splice(i, 1);
    var row = box.closest("tr");
    if (row) row.classList.toggle("picked", on);
  }
  function repick() {
    document.querySelectorAll("input.pick").forEach(function (box) {
      setPicked(box, picked.indexOf(box.value) >= 0);
    });
    document.querySelectorAll("input.pick-group").forEach(groupState);
    pickedCount();
  }
  function itemsOf(group) {
    return (group.getAttribute("data-items") || "").split(" ").filter(Boolean);
  }
  function groupState(box) {
    var items = itemsOf(box);
    var on = items.filter(function (v) { return picked.indexOf(v) >= 0; }).length;
    box.checked = on > 0 && on === items.length;
    box.indeterminate = on > 0 && on < items.length;
  }
  function pickGroup(group, on) {
    itemsOf(group).forEach(function (v) {
      var i = picked.indexOf(v);
      if (on && i < 0) picked.push(v);
      if (!on && i >= 0) picked.splice(i, 1);
    });
    group.closest("tbody").querySelectorAll("tr.member input.pick").forEach(function (m) { setPicked(m, on); });
    groupState(group);
  }
  function pickRow(row) {
    var group = row.querySelector("input.pick-group");
    if (group) {
      pickGroup(group, !group.checked);
    } else {
      var box = row.querySelector("input.pick");
      if (!box) return;
      setPicked(box, !box.checked);
      var g = row.closest("tbody") && row.closest("tbody").querySelector("input.pick-group");
      if (g) groupState(g);
    }
    save(KEYS.picked, picked);
    pickedCount();
  }
  document.addEventListener("change", function (e) {
    var box = e.target;
    if (box.matches && box.matches("input.pick")) {
      setPicked(box, box.checked);
      var g = box.closest("tbody") && box.closest("tbody").querySelector("input.pick-group");
      if (g) groupState(g);
    } else if (box.matches && box.matches("input.pick-group")) {
      pickGroup(box, box.checked);
    } else return;
    save(KEYS.picked, picked);
    pickedCount();
  });
  // a bulk action: the selection, or else the row under the cursor (a group: its alerts)
  function act(action) {
    var form = document.getElementById("bulk");
    var button = form && form.querySelector('button[value="' + action + '"]');
    if (!button) return;
    if (!picked.length) {
      var row = document.querySelector("tr.focus");
      if (!row) return;
      var group = row.querySelector("input.pick-group");
      picked = group ? itemsOf(group) : Array.prototype.map.call(row.querySelectorAll("input.pick"), function (b) { return b.value; });
    }
    if (picked.length) form.requestSubmit(button);
  }
  // what is selected but has no ticked box on the page (a closed group's alerts) goes as
  // hidden inputs; the selection is spent
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.id !== "bulk") return;
    form.querySelectorAll("input[data-extra]").forEach(function (i) { i.remove(); });
    picked.forEach(function (value) {
      var box = document.querySelector('input.pick[value="' + CSS.escape(value) + '"]');
      if (box && box.checked) return;
      var extra = document.createElement("input");
      extra.type = "hidden"; extra.name = "item"; extra.value = value; extra.setAttribute("data-extra", "");
      form.appendChild(extra);
    });
    picked = []; save(KEYS.picked, picked);
  });

  // -- rows: click to go, the cursor (j/k), remembered --------------------------------------
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.expand");
    if (link) { e.preventDefault(); toggle(link.closest("tbody.incident")); return; }
    var tr = e.target.closest && e.target.closest("tr[data-href]");
    if (!tr || e.target.closest("a,button,input,select,form,label")) return;
    window.location = tr.getAttribute("data-href");
  });
  function visible() {
    return Array.prototype.filter.call(document.querySelectorAll("tr[data-href]"), function (tr) {
      return tr.offsetParent !== null;
    });
  }
  function focusRow(row, scroll) {
    document.querySelectorAll("tr.focus").forEach(function (r) { r.classList.remove("focus"); });
    if (!row) return;
    row.classList.add("focus");
    if (row.getAttribute("data-key")) save(KEYS.cursor, row.getAttribute("data-key"));
    if (scroll) row.scrollIntoView({ block: scroll });
  }
  var reloaded = false;
  function restore(first) {
    reopen(); repick();
    // opened before a reload: their rows come with one fetch
    var missing = Array.prototype.some.call(document.querySelectorAll('tbody.incident[data-loaded="0"]'), function (b) {
      return opened[b.getAttribute("data-key")];
    });
    if (first && missing && !reloaded) { reloaded = true; fetchLive(true); }
    var key = load(KEYS.cursor, null);
    if (!key) return;
    var row = document.querySelector('tr[data-key="' + CSS.escape(key) + '"]');
    if (row && row.offsetParent !== null) {
      row.classList.add("focus");
      if (first) row.scrollIntoView({ block: "center" });
    }
  }

  // -- the ? overlay ------------------------------------------------------------------------
  var help = document.getElementById("keys-help");
  function overlay(open) {
    if (!help) return;
    help.hidden = !open;
    if (open) help.querySelector(".overlay-box").focus();
  }
  if (help) {
    help.querySelector(".overlay-box").setAttribute("tabindex", "-1");
    help.addEventListener("click", function (e) { if (e.target === help) overlay(false); });
  }

  // -- keys ---------------------------------------------------------------------------------
  var leader = 0; // the time `g` was pressed: the next key picks a page
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (help && !help.hidden) {
      if (e.key === "Escape" || e.key === "?") { e.preventDefault(); overlay(false); }
      return;
    }
    if (leader && Date.now() - leader < 1500) {
      leader = 0;
      var page = document.querySelector('nav a[accesskey="' + e.key + '"]');
      if (page) { e.preventDefault(); window.location = page.href; }
      return;
    }
    leader = 0;
    var all = visible();
    var current = document.querySelector("tr.focus");
    var at = current ? all.indexOf(current) : -1;
    var toggleLink;
    if (e.key === "?") {
      e.preventDefault(); overlay(true);
    } else if (e.key === "g") {
      leader = Date.now();
    } else if (e.key === "j" || e.key === "k") {
      if (!all.length) return;
      at = Math.max(0, Math.min(all.length - 1, at + (e.key === "j" ? 1 : -1)));
      focusRow(all[at], "nearest");
    } else if (e.key === "o" && current) {
      var body = current.closest("tbody.incident");
      if (!body) return;
      if (current.classList.contains("member")) focusRow(body.querySelector("tr.head")); // closing from an alert
      toggle(body);
    } else if (e.key === "Enter" && current) {
      window.location = current.getAttribute("data-href");
    } else if (e.key === "x" && current) {
      pickRow(current);
    } else if (e.key === "a" || e.key === "s") {
      act(e.key === "a" ? "acknowledge" : "silence");
    } else if ((e.key === "h" || e.key === "c") && (toggleLink = document.querySelector('[data-toggle-key="' + e.key + '"]'))) {
      window.location = toggleLink.href;
    } else if (e.key === "/") {
      var search = document.querySelector("[data-search]");
      e.preventDefault();
      if (search) { search.focus(); search.select(); } else window.location = "history";
    } else if (e.key === "Escape" && current) {
      current.classList.remove("focus"); save(KEYS.cursor, null);
    }
  });
  document.querySelectorAll("[data-back]").forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); history.back(); });
  });
  restore(true); refresh();
  document.documentElement.setAttribute("data-script", "ready"); // for the browser tests
  // The on-call calendar, wider than a phone: scrolled to today (the names stay in view).
  var scroller = document.querySelector(".calendar-scroll");
  var today = scroller && scroller.querySelector(".cal-day.today");
  if (scroller && today && scroller.scrollWidth > scroller.clientWidth) {
    var name = scroller.querySelector(".cal-name");
    var offset = today.getBoundingClientRect().left - scroller.getBoundingClientRect().left;
    scroller.scrollLeft += offset - (name ? name.offsetWidth : 0) - 8;
  }
})();
