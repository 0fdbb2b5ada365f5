// Progressive enhancement only: every page works without it.
(function () {
  "use strict";
  // Live "Now" page: re-fetch the list every N seconds (not while a field has focus).
  function refresh() {
    var live = document.getElementById("live");
    if (!live) return;
    var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 10;
    setInterval(function () {
      var active = document.activeElement;
      if (active && (active.tagName === "INPUT" || active.tagName === "SELECT")) return;
      var url = new URL(window.location.href);
      url.searchParams.set("fragment", "1");
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("live");
          if (fresh) {
            live.replaceWith(fresh); live = fresh; reopen(); rows();
            var all = visible();
            if (focus >= 0 && all[focus]) all[focus].classList.add("focus");
          }
        })
        .catch(function () {
          var stamp = document.querySelector("[data-updated]");
          if (stamp) stamp.textContent += " (refresh failed)";
        });
    }, seconds * 1000);
  }
  // Incidents expand to their alerts: in place, remembered across the live refresh.
  var opened = {};
  document.querySelectorAll("tbody.incident.open").forEach(function (b) {
    opened[b.getAttribute("data-incident")] = true;
  });
  function toggle(body) {
    var id = body.getAttribute("data-incident");
    opened[id] = !body.classList.contains("open");
    show(body, opened[id]);
  }
  function show(body, open) {
    body.classList.toggle("open", open);
    var link = body.querySelector("a.expand");
    if (link) { link.setAttribute("aria-expanded", String(open)); link.textContent = open ? "\u25BE" : "\u25B8"; }
  }
  function reopen() {
    document.querySelectorAll("tbody.incident").forEach(function (b) {
      var id = b.getAttribute("data-incident");
      if (id in opened) show(b, opened[id]);
    });
  }
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a.expand");
    if (!link) return;
    e.preventDefault();
    toggle(link.closest("tbody.incident"));
  });
  function visible() {
    return Array.prototype.filter.call(document.querySelectorAll("tr[data-href]"), function (tr) {
      return tr.offsetParent !== null;
    });
  }
  var focus = -1;
  function rows() {
    var all = document.querySelectorAll("tr[data-href]");
    all.forEach(function (tr) {
      tr.addEventListener("click", function (e) {
        if (e.target.closest("a,button,input,select,form")) return;
        window.location = tr.getAttribute("data-href");
      });
    });
    return all;
  }
  function keys() {
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var t = e.target.tagName;
      if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA") return;
      var all = visible();
      var current = document.querySelector("tr.focus");
      if (current) focus = all.indexOf(current);
      if (e.key === "j" || e.key === "k") {
        if (!all.length) return;
        if (current) current.classList.remove("focus");
        focus = Math.max(0, Math.min(all.length - 1, focus + (e.key === "j" ? 1 : -1)));
        all[focus].classList.add("focus");
        all[focus].scrollIntoView({ block: "nearest" });
      } else if (e.key === "o" && current) {
        var body = current.closest("tbody.incident");
        if (!body) return;
        if (current.classList.contains("member")) {
          // closing from one of its alerts: the focus goes back to the incident
          current.classList.remove("focus");
          body.querySelector("tr.head").classList.add("focus");
        }
        toggle(body);
      } else if (e.key === "Enter" && focus >= 0 && all[focus]) {
        window.location = all[focus].getAttribute("data-href");
      } else if (e.key === "/") {
        var search = document.querySelector("[data-search]");
        e.preventDefault();
        if (search) search.focus(); else window.location = "history";
      }
    });
  }
  document.querySelectorAll("[data-back]").forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); history.back(); });
  });
  rows(); keys(); refresh();
  // The on-call calendar, wider than a phone: scrolled to today (the names stay in view).
  var scroller = document.querySelector(".calendar-scroll");
  var today = scroller && scroller.querySelector(".cal-day.today");
  if (scroller && today && scroller.scrollWidth > scroller.clientWidth) {
    var name = scroller.querySelector(".cal-name");
    var offset = today.getBoundingClientRect().left - scroller.getBoundingClientRect().left;
    scroller.scrollLeft += offset - (name ? name.offsetWidth : 0) - 8;
  }
})();
