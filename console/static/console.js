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
          if (fresh) { live.replaceWith(fresh); live = fresh; rows(); }
        })
        .catch(function () {
          var stamp = document.querySelector("[data-updated]");
          if (stamp) stamp.textContent += " (refresh failed)";
        });
    }, seconds * 1000);
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
      var all = document.querySelectorAll("tr[data-href]");
      if (e.key === "j" || e.key === "k") {
        if (!all.length) return;
        if (focus >= 0 && all[focus]) all[focus].classList.remove("focus");
        focus = Math.max(0, Math.min(all.length - 1, focus + (e.key === "j" ? 1 : -1)));
        all[focus].classList.add("focus");
        all[focus].scrollIntoView({ block: "nearest" });
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
})();
