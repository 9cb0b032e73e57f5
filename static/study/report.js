// The live report updates in place: every 30 s while the campaign is live it asks the fragment
// endpoint whether a vote arrived (the version, one count query) and only then fetches the new
// tables and the new figures together (two requests, so two server processes compute them at
// once), swapping each in as it arrives and keeping the reader's scroll position, vertical and
// inside each table. window.srmosReport.refresh() polls at once (tests, the impatient).
// The server answers from the report's cache, which a worker recomputes when votes arrive: while
// it says "computing" (a newer report is on its way) the page asks again every 2 s, and it always
// shows how fresh the report is ("As of 36 votes, computed 4 s ago").
(function () {
  "use strict";
  const INTERVAL_MS = 30000;
  const COMPUTING_MS = 2000;
  const root = document.getElementById("report");
  if (!root) return;
  const status = document.getElementById("report-status");
  const freshness = document.getElementById("report-freshness");
  let soon = null;
  let version = root.dataset.version;
  let timer = null;
  let busy = null;

  function say(text) {
    if (status) status.textContent = text;
  }

  function swap(id, html) {
    const box = document.getElementById(id);
    const x = window.scrollX;
    const y = window.scrollY;
    const sideways = Array.from(box.querySelectorAll(".scroll"), (el) => el.scrollLeft);
    // Hold the height until the new figures have decoded, so the page cannot get shorter
    // under the reader (the browser would clamp the scroll position).
    box.style.minHeight = box.offsetHeight + "px";
    box.innerHTML = html;
    box.querySelectorAll(".scroll").forEach((el, i) => {
      if (sideways[i]) el.scrollLeft = sideways[i];
    });
    window.scrollTo(x, y);
    const decoded = Array.from(box.querySelectorAll("img"), (img) => img.decode().catch(() => null));
    Promise.all(decoded).then(() => {
      box.style.minHeight = "";
    });
  }

  async function getJSON(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    // A lapsed session redirects to the login page: HTML, not the report.
    if (!response.ok || !(response.headers.get("Content-Type") || "").includes("json")) {
      throw new Error("signed out");
    }
    return response.json();
  }

  function stop(text) {
    if (timer) clearInterval(timer);
    timer = null;
    say(text);
  }

  let figuresVersion = version;

  function fetchFigures(query) {
    return getJSON(root.dataset.figuresUrl + query).then(
      (reply) => {
        swap("report-figures", reply.html);
        figuresVersion = reply.version;
      },
      () => say("The figures could not be updated: reload the page.")
    );
  }

  async function poll() {
    const query = "?version=" + encodeURIComponent(version);
    let peek;
    try {
      peek = await getJSON(root.dataset.fragmentUrl + query + "&peek=1");
    } catch (err) {
      say("Could not update the report (signed out, or the server is away): reload the page.");
      return false;
    }
    let changed = false;
    if (freshness && peek.freshness) freshness.textContent = peek.freshness;
    if (peek.changed && peek.version !== version) {
      const next = "?version=" + encodeURIComponent(peek.version);
      const tables = getJSON(root.dataset.fragmentUrl + query).then((reply) => {
        if (reply.html === undefined) return;
        swap("report-body", reply.html);
        version = reply.version;
        root.dataset.version = version;
        // The tables' own answer says how fresh they are (it may be newer than the peek's).
        if (freshness && reply.freshness) freshness.textContent = reply.freshness;
        changed = true;
      });
      const figures = fetchFigures(next);
      try {
        await tables;
      } catch (err) {
        say("Could not update the report (signed out, or the server is away): reload the page.");
        return false;
      }
      await figures;
    } else if (figuresVersion !== version) {
      // A vote landed between the two requests: the figures are older than the tables.
      await fetchFigures("?version=" + encodeURIComponent(version));
    }
    if (peek.computing) again();
    const time = new Date().toLocaleTimeString();
    if (peek.live) say(`Updates in place every 30 s while the campaign is live; checked ${time}.`);
    else if (!peek.computing) stop(`The campaign is no longer live; last checked ${time}.`);
    return changed;
  }

  function again() {
    // A newer report is being computed: look again shortly (one pending look at a time).
    if (!soon) soon = setTimeout(() => { soon = null; refresh(); }, COMPUTING_MS);
  }

  function refresh() {
    // One poll at a time: a click during a slow recomputation waits for the same answer.
    if (!busy) busy = poll().finally(() => { busy = null; });
    return busy;
  }

  window.srmosReport = { refresh, version: () => version };
  if (root.dataset.live === "yes") timer = setInterval(refresh, INTERVAL_MS);
  if (freshness && freshness.dataset.computing === "yes") again();
})();
