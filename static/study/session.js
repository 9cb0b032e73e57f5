/* The rater's page: 1:1 device pixels, keys 1-5, votes sent without a page reload and retried
   until the server has them, the next image prefetched, breaks. Works without it too: the forms
   post and redirect.
   One input, one vote, on the image on screen: a score is taken only once the current image is
   decoded and painted and has been on screen for the campaign's floor (and minimum viewing
   time), and no second score is taken until the next image is painted in turn. */
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
    items.forEach(function (item) { item.querySelectorAll("img").forEach(showNative); });
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
    var ref = document.getElementById("ref-image");  // DCR: the unprocessed image beside it
    var partner = document.getElementById("partner");  // paired comparison: version B
    // Every image the trial shows (the template marks them): all must be painted before a score.
    var images = Array.prototype.slice.call(document.querySelectorAll("img[data-trial-image]"));
    // The protocol's keyboard, from the server: key -> answer (1-5, or 1/2 for A/B).
    var keys = JSON.parse(form.dataset.keys || "{}");
    var stage = document.getElementById("pair-stage");
    var toggling = stage && stage.dataset.layout === "toggle";
    var sawB = !toggling;  // one at a time: an answer only once both versions were on screen
    var counter = document.getElementById("counter");
    var bar = document.getElementById("progress-bar");
    var progress = bar.parentElement;
    var error = document.getElementById("vote-error");
    var pause = document.getElementById("break");
    var buttons = form.querySelectorAll("button[name=score]");
    var minView = parseInt(form.dataset.minViewMs || "0", 10);
    var floor = parseInt(form.dataset.voteFloorMs || "0", 10);
    var breakEvery = parseInt(form.dataset.breakEvery || "0", 10);
    var shownAt = null;   // when the current image was painted
    var busy = false;     // a vote is on its way to the server
    var unlockTimer = null;
    var showing = 0;      // which render the pending paint belongs to
    var keyAt = null;     // when the last score was given, for the latency figures
    var notBefore = 0;    // the server asked for a longer look: no score before this time
    window.srmosLatencies = [];

    // A score is taken only for an image that is on screen, painted, and seen long enough.
    function ready() {
      var now = performance.now();
      return !busy && shownAt !== null && pause.hidden && now >= notBefore && sawB &&
        now - shownAt >= Math.max(minView, floor);
    }

    function updateButtons() {
      var on = ready();
      buttons.forEach(function (b) { b.disabled = !on; });
    }

    function unlockLater(ms) {
      clearTimeout(unlockTimer);
      unlockTimer = setTimeout(updateButtons, ms);
    }

    function started() {
      shownAt = performance.now();
      if (toggling) seeB();  // B was flipped to while the pair was still loading
      if (keyAt !== null) window.srmosLatencies.push(shownAt - keyAt);
      keyAt = null;
      document.body.dataset.painted = form.position.value;
      updateButtons();
      if (Math.max(minView, floor) > 0) unlockLater(Math.max(minView, floor));
    }

    // Decoded, then two animation frames: the frame that contains the image has been painted.
    // DCR shows two images: a score is for the pair on screen.
    function whenPainted() {
      var mine = ++showing;
      function decoded(image) {
        if (!image.decode) return Promise.resolve();
        // decode() can refuse an image that is loaded (a browser quirk): paint it anyway.
        return image.decode().catch(function (problem) {
          if (image.complete && image.naturalWidth > 0) return null;
          throw problem;
        });
      }
      Promise.all(images.map(decoded)).then(function () {
        if (mine !== showing) return;
        images.forEach(function (image) { image.style.visibility = ""; });
        requestAnimationFrame(function () {
          requestAnimationFrame(function () { if (mine === showing) started(); });
        });
      }, function () {
        if (mine !== showing) return;
        showError("The image could not be loaded. Reloading the page...");
        setTimeout(function () { window.location.reload(); }, 1500);
      });
    }

    function showError(message) {
      error.textContent = message;
      error.hidden = !message;
    }

    function render(next) {
      shownAt = null;
      // Never show the old image in the new trial's place.
      images.forEach(function (image) { image.style.visibility = "hidden"; });
      form.position.value = next.position;
      counter.textContent = "Image " + next.number + " of " + next.total;
      document.title = "Image " + next.number + " of " + next.total;
      bar.style.width = next.percent + "%";
      progress.setAttribute("aria-valuenow", next.position);
      images.forEach(function (image) {
        image.setAttribute("width", next.width);
        image.setAttribute("height", next.height);
        showNative(image);
      });
      img.src = next.src;
      if (ref) ref.src = next.ref_src;
      if (partner) {
        partner.src = next.partner_src;
        prefetch(next.partner_next_src);
        if (toggling) { sawB = false; showVersion("a"); }
      }
      whenPainted();
      prefetch(next.next_src);
      if (ref) prefetch(next.ref_next_src);
      if (breakEvery > 0 && next.position > 0 && next.position % breakEvery === 0) {
        showBreak(true);
        document.getElementById("break-continue").focus();
      }
      updateButtons();
    }

    // A modal break: everything but the dialog is inert (no focus, no clicks) while it shows,
    // so Tab cannot wander to the rating buttons behind it.
    function showBreak(on) {
      pause.hidden = !on;
      for (var node = pause; node.parentElement; node = node.parentElement) {
        Array.prototype.forEach.call(node.parentElement.children, function (sibling) {
          if (sibling !== node && sibling.tagName !== "SCRIPT") sibling.inert = on;
        });
      }
    }

    function wait(ms) {
      return new Promise(function (resolve) { setTimeout(resolve, ms); });
    }

    function send(data, attempt) {
      return fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      }).then(function (response) {
        if ([502, 503, 504].indexOf(response.status) >= 0) throw { retry: true };
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") >= 0;
        if (!json) {
          // A CSRF refusal or an error page: a fresh page gets a fresh token and the truth.
          window.location.reload();
          throw { fatal: true, message: "Reloading the page..." };
        }
        return response.json().then(function (body) {
          if (response.ok) return body;
          if (body.too_fast) throw { fatal: true, message: body.error, wait: body.retry_in_ms };
          if (body.resync) window.location.reload();
          throw { fatal: true, message: body.error || "Your score was not accepted." };
        });
      }).catch(function (problem) {
        if (problem && problem.fatal) throw problem;
        // The network failed or the server is briefly away: send the same vote again (the
        // server keeps one), until it is stored.
        showError("Connection problem: your score is being sent again...");
        return wait(Math.min(8000, 500 * Math.pow(2, attempt))).then(function () {
          return send(data, attempt + 1);
        });
      });
    }

    // One at a time (a narrow window): T or the Switch button flips between A and B.
    function showVersion(which) {
      document.getElementById("figure-a").hidden = which !== "a";
      document.getElementById("figure-b").hidden = which !== "b";
      var button = document.getElementById("toggle-pair");
      if (button) button.textContent = which === "a" ? "Switch to B" : "Switch to A";
      stage.dataset.showing = which;
    }

    function toggle() {
      if (!toggling) return;
      var next = stage.dataset.showing === "b" ? "a" : "b";
      showVersion(next);
      if (next === "b") seeB();
    }

    // B counts as seen only once the pair is painted and B is the version on screen.
    function seeB() {
      if (sawB || shownAt === null || stage.dataset.showing !== "b") return;
      sawB = true;
      updateButtons();
    }

    function vote(score) {
      if (!ready()) {
        // Within the floor it is the same key press again (a double press, a bounce): ignored.
        var early = shownAt !== null && performance.now() - shownAt >= floor;
        if (!busy && early && pause.hidden) showError("Please look at the image a little longer.");
        return;
      }
      var data = new FormData(form);
      data.set("score", score);
      data.set("duration_ms", Math.round(performance.now() - shownAt));
      busy = true;
      keyAt = performance.now();
      updateButtons();
      send(data, 0).then(function (body) {
        busy = false;
        showError(body.status === "duplicate" ? "That image was already rated in another window." : "");
        if (!body.next) { window.location.href = body.done_url; return; }
        render(body.next);
      }).catch(function (problem) {
        busy = false;
        keyAt = null;
        showError(problem.message);
        updateButtons();
        // The server wants this image seen a little longer: it stays, and takes the score again.
        if (problem.wait) {
          notBefore = performance.now() + problem.wait;
          updateButtons();
          unlockLater(problem.wait);
        }
      });
    }

    images.forEach(function (image) {
      image.addEventListener("error", function () {
        showError("The image could not be loaded. Reloading the page...");
        setTimeout(function () { window.location.reload(); }, 1500);
      });
      showNative(image);
    });
    updateButtons();
    whenPainted();
    prefetch(form.dataset.nextSrc);
    prefetch(form.dataset.refNextSrc);
    prefetch(form.dataset.partnerNextSrc);
    if (toggling) {
      showVersion("a");
      document.getElementById("toggle-pair").addEventListener("click", toggle);
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var submitter = event.submitter || document.activeElement;
      if (submitter && submitter.value) vote(submitter.value);
    });
    document.addEventListener("keydown", function (event) {
      if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
      var answer = keys[event.key];
      if (answer) { event.preventDefault(); vote(answer); return; }
      // One version at a time: T flips between A and B.
      if (toggling && (event.key === "t" || event.key === "T")) { event.preventDefault(); toggle(); }
    });
    document.getElementById("break-continue").addEventListener("click", function () {
      showBreak(false);
      // A fresh look after the break, but only at an image that is painted already.
      if (shownAt !== null) shownAt = performance.now();
      updateButtons();
      if (Math.max(minView, floor) > 0) unlockLater(Math.max(minView, floor));
      form.focus();
    });
  }

  return { calibration: calibration, trials: trials };
})();

// The page names its part on the script tag (data-start): the Content-Security-Policy runs no
// inline script.
(function (script) {
  var start = script && script.dataset.start;
  if (start && srmos[start]) srmos[start]();
})(document.currentScript);
