/* The rater's page: 1:1 device pixels, keys 1-5, votes sent without a page reload and retried
   until the server has them, the next image prefetched, breaks. Works without it too: the forms
   post and redirect. */
var srmos = (function () {
  "use strict";

  function showNative(img) {
    // One image pixel per device pixel, whatever the zoom or screen density.
    var ratio = window.devicePixelRatio || 1;
    img.style.width = img.getAttribute("width") / ratio + "px";
    img.style.height = img.getAttribute("height") / ratio + "px";
  }

  function prefetch(src) {
    if (!src) return;
    var image = new Image();
    image.src = src;
  }

  function calibration() {
    var items = document.querySelectorAll(".calibration-item");
    var counter = document.getElementById("calibration-counter");
    var next = document.getElementById("next-example");
    var start = document.getElementById("start-rating");
    var index = 0;
    items.forEach(function (item) { showNative(item.querySelector("img")); });
    function show() {
      items.forEach(function (item, i) { item.hidden = i !== index; });
      counter.textContent = "Example " + (index + 1) + " of " + items.length;
      if (index + 1 < items.length) prefetch(items[index + 1].querySelector("img").src);
      var last = index === items.length - 1;
      next.hidden = last;
      start.hidden = !last;
      (last ? start : next).focus();
    }
    next.addEventListener("click", function () {
      if (index < items.length - 1) { index += 1; show(); }
    });
    show();
  }

  function trials() {
    var form = document.getElementById("vote-form");
    var img = document.getElementById("stimulus");
    var counter = document.getElementById("counter");
    var bar = document.getElementById("progress-bar");
    var progress = bar.parentElement;
    var error = document.getElementById("vote-error");
    var pause = document.getElementById("break");
    var buttons = form.querySelectorAll("button[name=score]");
    var minView = parseInt(form.dataset.minViewMs || "0", 10);
    var breakEvery = parseInt(form.dataset.breakEvery || "0", 10);
    var shownAt = performance.now();
    var busy = false;
    var unlockTimer = null;

    function lock(on) {
      buttons.forEach(function (b) { b.disabled = on; });
    }

    function started() {
      shownAt = performance.now();
      if (minView > 0) {
        lock(true);
        clearTimeout(unlockTimer);
        unlockTimer = setTimeout(function () { lock(false); }, minView);
      }
    }

    function showError(message) {
      error.textContent = message;
      error.hidden = !message;
    }

    function render(next) {
      form.position.value = next.position;
      counter.textContent = "Image " + next.number + " of " + next.total;
      document.title = "Image " + next.number + " of " + next.total;
      bar.style.width = next.percent + "%";
      progress.setAttribute("aria-valuenow", next.position);
      img.setAttribute("width", next.width);
      img.setAttribute("height", next.height);
      showNative(img);
      img.src = next.src;
      prefetch(next.next_src);
      if (breakEvery > 0 && next.position > 0 && next.position % breakEvery === 0) {
        pause.hidden = false;
        document.getElementById("break-continue").focus();
      }
    }

    function send(score, attempt) {
      var data = new FormData(form);
      data.set("score", score);
      data.set("duration_ms", Math.round(performance.now() - shownAt));
      return fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      }).then(function (response) {
        return response.json().then(function (body) {
          if (response.ok) return body;
          if (body.resync) { window.location.reload(); }
          throw { fatal: true, message: body.error || "Your score was not accepted." };
        });
      }).catch(function (problem) {
        if (problem && problem.fatal) throw problem;
        // The network failed: the vote is not lost, it is sent again (the server keeps one).
        showError("Connection problem: your score is being sent again...");
        return new Promise(function (resolve) { setTimeout(resolve, Math.min(8000, 500 * Math.pow(2, attempt))); })
          .then(function () { return send(score, attempt + 1); });
      });
    }

    function vote(score) {
      if (busy || !pause.hidden) return;
      if (buttons[0].disabled) { showError("Please look at the image a little longer."); return; }
      busy = true;
      lock(true);
      send(score, 0).then(function (body) {
        showError("");
        if (!body.next) { window.location.href = body.done_url; return; }
        render(body.next);
      }).catch(function (problem) {
        showError(problem.message);
      }).then(function () {
        busy = false;
        lock(false);
      });
    }

    img.addEventListener("load", started);
    if (img.complete) started();
    showNative(img);
    prefetch(form.dataset.nextSrc);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var submitter = event.submitter || document.activeElement;
      if (submitter && submitter.value) vote(submitter.value);
    });
    document.addEventListener("keydown", function (event) {
      if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
      if (/^[1-5]$/.test(event.key)) { event.preventDefault(); vote(event.key); }
    });
    document.getElementById("break-continue").addEventListener("click", function () {
      pause.hidden = true;
      started();
      buttons[2].focus();
    });
  }

  return { calibration: calibration, trials: trials };
})();
