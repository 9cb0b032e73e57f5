/* An import job's page while the job runs: its state polled every second, the page loaded
   again once it has finished (the report is then part of the page). */
(function (script) {
  "use strict";
  var url = script.dataset.statusUrl;
  function show(id, text) {
    var el = document.getElementById(id);
    el.textContent = text;
    el.hidden = !text;
  }
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (state) {
        // Finished: the page itself shows the report, so load it again.
        if (state.finished) { window.location.reload(); return; }
        document.getElementById("import-status").textContent = state.status_display;
        document.getElementById("import-summary").textContent = state.summary;
        var bar = document.getElementById("import-progress");
        bar.max = state.files_total || 1;
        bar.value = state.files_done;
        document.getElementById("import-count").textContent =
          state.files_done + " of " + (state.files_total || "?");
        show("import-stall", state.stall);
        document.getElementById("import-run-again").hidden = !state.stall;
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})(document.currentScript);
