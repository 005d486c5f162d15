// Quire operator dashboard: refreshes each [data-live] region (every 2 seconds, or on each event
// of the region's data-events stream) by asking the same URL for its live fragment (header
// X-Quire-Fragment: live). The server renders the
// fragment with html/template, as the page itself; this script only swaps it in when it
// changed, pauses while the tab is hidden, and copies the region's one-line summary into the
// page's polite live region (#live-announcer) when the summary changes, so that screen readers
// hear what changed rather than the whole table. Without JavaScript the pages work, just static.
(function () {
  "use strict";
  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  var announcer = document.getElementById("live-announcer");
  if (!regions.length || !window.fetch) {
    return;
  }
  var last = null;
  var busy = false;
  function summary() {
    var s = document.querySelector("[data-live] .summary");
    return s ? s.textContent.replace(/\s+/g, " ").trim() : "";
  }
  var said = summary();
  var again = false; // a refresh asked for while one was running
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    if (document.hidden) {
      return;
    }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Quire-Fragment": "live" },
      cache: "no-store"
    }).then(function (resp) {
      if (resp.status === 401) {
        window.location.reload(); // the session ended: the page sends us to sign in
        return null;
      }
      return resp.ok ? resp.text() : null;
    }).then(function (html) {
      if (typeof html !== "string" || html === last) {
        return;
      }
      last = html;
      regions.forEach(function (el) {
        el.innerHTML = html;
      });
      var now = summary();
      if (announcer && now !== said) {
        announcer.textContent = now;
        said = now;
      }
    }).catch(function () {
      // The server is unreachable for a moment; the next tick tries again.
    }).finally(function () {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }
  // A tab shown again catches up at once (events that came while it was hidden were skipped).
  document.addEventListener("visibilitychange", refresh);
  // A page whose region names an event stream (a task's page) refreshes on each of its events
  // instead of every 2 seconds, and stops once the task has ended; without EventSource, or
  // once the stream fails for good, it falls back to the timer.
  var streamURL = regions[0].getAttribute("data-events");
  if (streamURL && window.EventSource) {
    var es = new EventSource(streamURL, { withCredentials: true });
    es.addEventListener("status", function (ev) {
      refresh();
      try {
        var st = JSON.parse(ev.data);
        if (st.state === "SUCCESS" || st.state === "FAILURE" || st.state === "REVOKED") {
          es.close();
        }
      } catch (e) {
        // Not JSON: keep following.
      }
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        window.setInterval(refresh, 2000);
      }
    };
    return;
  }
  window.setInterval(refresh, 2000);
})();
