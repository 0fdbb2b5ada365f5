// Before the first paint (not deferred): the theme chosen in this browser, else the system's.
(function () {
  "use strict";
  var choice = "auto";
  try { choice = localStorage.getItem("passiton.theme") || "auto"; } catch (e) { /* private mode */ }
  var dark = choice === "dark" ||
    (choice === "auto" && window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
  document.documentElement.setAttribute("data-theme-choice", choice);
})();
