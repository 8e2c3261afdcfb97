// Live updates for the orderlane dashboard: no framework, nothing fetched from elsewhere.
// The server sends a `change` event whenever the journal's change marker moves; the page is then
// fetched again and its live part (#live) swapped in, so filters and scroll position stay.
(function () {
  "use strict";
  var status = document.getElementById("live-status");
  var updated = document.getElementById("updated");
  var refreshing = false;
  var again = false;

  function show(state, text) {
    if (status) {
      status.dataset.state = state;
      status.textContent = text;
    }
  }

  function currentMarker() {
    var live = document.getElementById("live");
    return live ? live.dataset.marker : null;
  }

  function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var next = fresh.getElementById("live");
        var live = document.getElementById("live");
        if (next && live) {
          live.replaceWith(document.importNode(next, true));
        }
        var stamp = fresh.getElementById("updated");
        if (stamp && updated) { updated.textContent = stamp.textContent; }
        if (fresh.title) { document.title = fresh.title; }
        show("live", "live");
      })
      .catch(function () { show("problem", "refresh failed"); })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (!window.EventSource || !document.getElementById("live")) { return; }
  var source = new EventSource("/api/events");
  source.addEventListener("open", function () { show("live", "live"); });
  source.addEventListener("change", function (event) {
    var marker = JSON.parse(event.data).marker;
    if (marker !== currentMarker()) { refresh(); }
  });
  source.addEventListener("problem", function () { show("problem", "journal unreadable"); });
  source.addEventListener("error", function () { show("offline", "reconnecting"); });
})();
