// Live refresh: every data-refresh seconds, fetch this page again and swap its <main> in place.
// Skipped while the tab is hidden or while focus is on a control inside <main> (keyboard use).
(function () {
  "use strict";
  var seconds = Number(document.body.dataset.refresh || 0);
  if (!seconds) return;

  function busy() {
    var active = document.activeElement;
    var main = document.getElementById("main");
    return active && active !== document.body && main.contains(active) &&
      /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName);
  }

  function refresh() {
    if (document.hidden || busy()) return;
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (response) {
        if (response.redirected || !response.ok) {  // signed out meanwhile, or an error: show it whole
          window.location.reload();
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null || busy()) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (!fresh) return;
        document.getElementById("main").innerHTML = fresh.innerHTML;
        document.dispatchEvent(new CustomEvent("dashboard:swapped"));
      })
      .catch(function () { /* the backend is away for a moment: try again at the next turn */ });
  }

  window.setInterval(refresh, seconds * 1000);
})();
