// The live report updates in place: every 30 s while the campaign is live it asks the fragment
// endpoint whether a vote arrived (the version) and only then swaps in the new tables, then the
// new figures (drawn apart, they take longer), keeping the reader's scroll position, vertical
// and inside each table. window.srmosReport.refresh() polls at once (tests, the impatient).
(function () {
  "use strict";
  const INTERVAL_MS = 30000;
  const root = document.getElementById("report");
  if (!root) return;
  const status = document.getElementById("report-status");
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

  async function poll() {
    const query = "?version=" + encodeURIComponent(version);
    let reply;
    try {
      reply = await getJSON(root.dataset.fragmentUrl + query);
    } catch (err) {
      say("Could not update the report (signed out, or the server is away): reload the page.");
      return false;
    }
    const changed = reply.changed && reply.version !== version && reply.html !== undefined;
    if (changed) {
      swap("report-body", reply.html);
      version = reply.version;
      root.dataset.version = version;
      try {
        const figures = await getJSON(root.dataset.figuresUrl + "?version=" + encodeURIComponent(version));
        swap("report-figures", figures.html);
      } catch (err) {
        say("The figures could not be updated: reload the page.");
        return changed;
      }
    }
    const time = new Date().toLocaleTimeString();
    if (reply.live) say(`Updates in place every 30 s while the campaign is live; checked ${time}.`);
    else stop(`The campaign is no longer live; last checked ${time}.`);
    return changed;
  }

  function refresh() {
    // One poll at a time: a click during a slow recomputation waits for the same answer.
    if (!busy) busy = poll().finally(() => { busy = null; });
    return busy;
  }

  window.srmosReport = { refresh, version: () => version };
  if (root.dataset.live === "yes") timer = setInterval(refresh, INTERVAL_MS);
})();
