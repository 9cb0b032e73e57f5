/* The rater's page: 1:1 device pixels, keys 1-5, votes sent without a page reload and retried
   until the server has them, the next image prefetched, breaks. Works without it too: the forms
   post and redirect.
   An outage (the network, or the server answering 5xx while its database restarts) is waited
   out: the page says it is reconnecting, keeps the score and sends it again with backoff, for
   as long as the page is open; each vote carries its own id, so a resend of a vote the server
   stored already is acknowledged as that vote.
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

  // Waits between tries while the server is away: 0.5, 1, 2, 4, then 8 s, never giving up.
  function backoff(attempt) {
    return Math.min(8000, 500 * Math.pow(2, attempt));
  }

  function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // One id per vote (not per request): the server tells a resend from another window's vote.
  function newVoteId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var id = "";
    for (var i = 0; i < 4; i++) id += Math.floor(Math.random() * 0x100000000).toString(16);
    return id;
  }

  // A calm line, not an error: the page waits for the server and carries on by itself.
  function reconnecting(on, before) {
    var note = document.getElementById("reconnecting");
    if (!note && on) {
      note = document.createElement("p");
      note.id = "reconnecting";
      note.className = "hint";
      note.setAttribute("role", "status");
      note.style.cssText = "max-width:42rem;margin:8px auto;padding:8px 12px;border-radius:4px;" +
        "background:#f4f4f4;color:#111;text-align:center";
      note.textContent = "Reconnecting... Your score is kept and will be sent as soon as the " +
        "server answers again. There is no need to reload the page.";
      before.parentNode.insertBefore(note, before);
    }
    if (note) note.hidden = !on;
    document.body.dataset.connection = on ? "reconnecting" : "ok";
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

    // The buttons follow ready(). While only time stands between them and a score (the floor,
    // the minimum viewing time, a "look longer"), they check again when it is due, and again
    // after that if the timer came a hair early by performance.now() (a timer may fire a
    // fraction of a millisecond before its delay by that clock): they never stay disabled.
    function updateButtons() {
      var on = ready();
      buttons.forEach(function (b) { b.disabled = !on; });
      clearTimeout(unlockTimer);
      if (on || busy || shownAt === null) return;
      var due = Math.max(shownAt + Math.max(minView, floor), notBefore) - performance.now();
      if (due >= 0) unlockTimer = setTimeout(updateButtons, Math.ceil(due) + 1);
    }

    function started() {
      shownAt = performance.now();
      imageRetries = 0;
      if (toggling) seeB();  // B was flipped to while the pair was still loading
      if (keyAt !== null) window.srmosLatencies.push(shownAt - keyAt);
      keyAt = null;
      document.body.dataset.painted = form.position.value;
      updateButtons();
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
        // A broken image: wait for the server, or reload (imageFailed decides). Any other
        // failure to decode: a fresh page.
        if (mine !== showing) return;
        var broken = images.filter(function (image) {
          return image.complete && image.naturalWidth === 0;
        });
        if (broken.length) { broken.forEach(imageFailed); return; }
        showError("The image could not be loaded. Reloading the page...");
        setTimeout(function () { window.location.reload(); }, 1500);
      });
    }

    function showError(message) {
      error.textContent = message;
      error.hidden = !message;
    }

    // An image that did not load: while the server is away (no answer, or 5xx) the page waits
    // and loads it again; any other refusal (the session moved on elsewhere) reloads the page.
    var checking = false;
    var imageRetries = 0;  // loads tried again since the last image was painted
    function imageFailed(image) {
      if (checking) return;
      checking = true;
      var src = image.src.split("?")[0];
      var attempt = 0;
      function check() {
        fetch(src, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
          return response.status;
        }, function () { return 0; }).then(function (status) {
          if (status === 0 || status >= 500) {
            reconnecting(true, error);
            setTimeout(check, backoff(attempt++));
            return;
          }
          checking = false;
          // Refused, or served but still not shown twice over: a fresh page.
          if (status >= 400 || ++imageRetries > 2) {
            showError("The image could not be loaded. Reloading the page...");
            setTimeout(function () { window.location.reload(); }, 1500);
            return;
          }
          reconnecting(false, error);
          // Unless the page moved on meanwhile: the same image again, past any cached failure.
          if (image.src.split("?")[0] === src) {
            image.src = src + "?retry=" + Date.now();
            whenPainted();
          }
        });
      }
      check();
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

    // A request that hangs (a server that took the connection and never answers) is given up
    // after this long and sent again: the vote id makes the resend safe.
    var SEND_TIMEOUT_MS = 10000;

    function send(data, attempt) {
      var abort = window.AbortController ? new AbortController() : null;
      var timer = abort ? setTimeout(function () { abort.abort(); }, SEND_TIMEOUT_MS) : null;
      return fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: abort ? abort.signal : undefined,
      }).then(function (response) {
        clearTimeout(timer);
        // Any server error (a database restarting answers 503, a proxy 502/504, a crash 500):
        // the vote is sent again; the server keeps one.
        if (response.status >= 500) throw { retry: true };
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
        clearTimeout(timer);
        if (problem && problem.fatal) throw problem;
        // The network failed or the server is briefly away: send the same vote again (the
        // server keeps one), until it is stored.
        showError("");
        reconnecting(true, error);
        return wait(backoff(attempt)).then(function () {
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
      data.set("vote_id", newVoteId());
      data.set("duration_ms", Math.round(performance.now() - shownAt));
      busy = true;
      keyAt = performance.now();
      updateButtons();
      send(data, 0).then(function (body) {
        busy = false;
        reconnecting(false, error);
        showError(body.status === "duplicate" ? "That image was already rated in another window." : "");
        if (!body.next) { window.location.href = body.done_url; return; }
        render(body.next);
      }).catch(function (problem) {
        busy = false;
        keyAt = null;
        reconnecting(false, error);
        showError(problem.message);
        updateButtons();
        // The server wants this image seen a little longer: it stays, and takes the score again.
        if (problem.wait) {
          notBefore = performance.now() + problem.wait;
          updateButtons();
        }
      });
    }

    images.forEach(function (image) {
      image.addEventListener("error", function () { imageFailed(image); });
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
