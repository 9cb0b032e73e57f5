/* Pages that follow work done by the workers (a campaign's generation and metrics, a model's
   check, an import): each element with data-follow-url asks that small JSON view every
   1.5 s while the work is pending and puts its answer in place, then stops once it is settled.

   The view answers {settled, reload, interval, text, html, outer, hidden, attrs}: the last five
   map a CSS selector to the new text, inner HTML, outer HTML, hidden flag or attributes of the
   elements it selects. "reload" (with settled) loads the page once more, for pages whose final
   state has more to show than the pending one. No build step; plain ES5 and fetch. */
(function () {
  "use strict";
  if (window.srmosFollow) { return; }
  var state = window.srmosFollow = {polls: 0, settled: false, errors: 0};

  function each(map, apply) {
    Object.keys(map || {}).forEach(function (selector) {
      var elements = document.querySelectorAll(selector);
      for (var i = 0; i < elements.length; i++) { apply(elements[i], map[selector]); }
    });
  }

  function show(answer) {
    each(answer.text, function (el, value) { el.textContent = value; });
    each(answer.html, function (el, value) { el.innerHTML = value; });
    each(answer.outer, function (el, value) { el.outerHTML = value; });
    each(answer.hidden, function (el, value) { el.hidden = Boolean(value); });
    each(answer.attrs, function (el, values) {
      Object.keys(values).forEach(function (name) { el.setAttribute(name, values[name]); });
    });
  }

  function follow(root) {
    var url = root.getAttribute("data-follow-url");
    var every = Number(root.getAttribute("data-follow-interval")) || 1500;
    function poll() {
      fetch(url, {credentials: "same-origin", cache: "no-store",
                  headers: {"Accept": "application/json"}})
        .then(function (response) {
          // Logged out, or the object is gone: nothing more to follow here.
          if (response.status === 403 || response.status === 404) { return null; }
          if (!response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (answer) {
          if (answer === null) { return; }
          state.polls += 1;
          show(answer);
          if (answer.settled) {
            state.settled = true;
            if (answer.reload) { window.location.reload(); }
            return;
          }
          window.setTimeout(poll, answer.interval || every);
        })
        .catch(function () {
          state.errors += 1;
          window.setTimeout(poll, 5000);  // the server or the network is away for a moment
        });
    }
    window.setTimeout(poll, every);
  }

  function start() {
    var roots = document.querySelectorAll("[data-follow-url]");
    for (var i = 0; i < roots.length; i++) { follow(roots[i]); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
