// Quire operator dashboard: refreshes each [data-live] region every 2 seconds by asking the
// same URL for its live fragment (header X-Quire-Fragment: live). The server renders the
// fragment with html/template, as the page itself; this script only swaps it in when it
// changed, and pauses while the tab is hidden. Without JavaScript the pages work, just static.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live]");
  if (!regions.length || !window.fetch) {
    return;
  }
  var busy = false;
  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Quire-Fragment": "live" },
      cache: "no-store"
    }).then(function (resp) {
      if (resp.status === 401) {
        window.location.reload(); // the session expired: the page sends us to sign in
        return null;
      }
      return resp.ok ? resp.text() : null;
    }).then(function (html) {
      if (html === null || html === undefined) {
        return;
      }
      regions.forEach(function (el) {
        if (el.getAttribute("data-last") !== html) {
          el.innerHTML = html;
          el.setAttribute("data-last", html);
        }
      });
    }).catch(function () {
      // The server is unreachable for a moment; the next tick tries again.
    }).finally(function () {
      busy = false;
    });
  }
  window.setInterval(refresh, 2000);
})();
