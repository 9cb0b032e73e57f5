/* The comparison viewer: every panel shows the same region of the HR grid at the same zoom
   (one image pixel per device pixel at 1x; the LR input drawn at HR size, pixelated). Drag to
   pan, wheel or +/- to zoom, Shift+drag to select the figure's crop, B to blink A and B. */
(function () {
  "use strict";
  // The source image choice submits at once; a listener, as the CSP runs no inline handler.
  var choice = document.getElementById("image-choice");
  if (choice) choice.addEventListener("change", function () { choice.form.submit(); });
  var viewer = document.getElementById("viewer");
  if (!viewer) return;
  var scale = parseInt(viewer.dataset.scale, 10);
  var width = parseInt(viewer.dataset.width, 10);
  var height = parseInt(viewer.dataset.height, 10);
  var ratio = window.devicePixelRatio || 1;
  var zooms = [1, 2, 4, 8];
  var state = { zoom: 0, ox: 0, oy: 0, crop: null };
  var ports = Array.prototype.slice.call(document.querySelectorAll(".port"));
  var images = Array.prototype.slice.call(viewer.querySelectorAll("img.layer"));
  var blinkImage = document.getElementById("blink-image");
  var blinkA = document.getElementById("blink-a");
  var blinkB = document.getElementById("blink-b");
  var blinkOnA = true;
  var inputs = ["x", "y", "w", "h"].map(function (k) { return document.getElementById("crop-" + k); });

  function k() { return zooms[state.zoom] / ratio; }  // CSS px per HR pixel

  function clamp() {
    var port = ports[0];
    var maxX = Math.max(0, width - port.clientWidth / k());
    var maxY = Math.max(0, height - port.clientHeight / k());
    state.ox = Math.min(Math.max(0, state.ox), maxX);
    state.oy = Math.min(Math.max(0, state.oy), maxY);
  }

  function draw() {
    clamp();
    var f = k();
    document.querySelectorAll(".port .layer").forEach(function (img) {
      var s = img.classList.contains("lr") ? scale : 1;
      img.style.transform = "translate(" + (-state.ox * f) + "px," + (-state.oy * f) + "px) scale(" + (f * s) + ")";
    });
    document.querySelectorAll(".port .crop").forEach(function (box) {
      var c = state.crop;
      box.hidden = !c;
      if (!c) return;
      box.style.left = (c.x - state.ox) * f + "px";
      box.style.top = (c.y - state.oy) * f + "px";
      box.style.width = c.w * f + "px";
      box.style.height = c.h * f + "px";
    });
    document.getElementById("zoom-level").textContent = zooms[state.zoom] + "x";
  }

  function zoomBy(step, px, py) {
    var before = k();
    var next = Math.min(Math.max(state.zoom + step, 0), zooms.length - 1);
    if (next === state.zoom) return;
    // Keep the HR pixel under the pointer in place.
    var hx = state.ox + px / before, hy = state.oy + py / before;
    state.zoom = next;
    state.ox = hx - px / k();
    state.oy = hy - py / k();
    draw();
  }

  function hrPoint(port, event) {
    var r = port.getBoundingClientRect();
    return { x: state.ox + (event.clientX - r.left) / k(), y: state.oy + (event.clientY - r.top) / k() };
  }

  function setCrop(a, b) {
    var x = Math.round(Math.min(a.x, b.x)), y = Math.round(Math.min(a.y, b.y));
    var w = Math.round(Math.abs(b.x - a.x)), h = Math.round(Math.abs(b.y - a.y));
    x = Math.max(0, x); y = Math.max(0, y);
    w = Math.max(4, Math.min(w, width - x)); h = Math.max(4, Math.min(h, height - y));
    state.crop = { x: x, y: y, w: w, h: h };
    [x, y, w, h].forEach(function (v, i) { inputs[i].value = v; });
    draw();
  }

  ports.forEach(function (port) {
    var drag = null;
    port.addEventListener("pointerdown", function (event) {
      port.setPointerCapture(event.pointerId);
      drag = { x: event.clientX, y: event.clientY, ox: state.ox, oy: state.oy,
               crop: event.shiftKey ? hrPoint(port, event) : null };
    });
    port.addEventListener("pointermove", function (event) {
      if (!drag) return;
      if (drag.crop) { setCrop(drag.crop, hrPoint(port, event)); return; }
      state.ox = drag.ox - (event.clientX - drag.x) / k();
      state.oy = drag.oy - (event.clientY - drag.y) / k();
      draw();
    });
    port.addEventListener("pointerup", function () { drag = null; });
    port.addEventListener("wheel", function (event) {
      event.preventDefault();
      var r = port.getBoundingClientRect();
      zoomBy(event.deltaY < 0 ? 1 : -1, event.clientX - r.left, event.clientY - r.top);
    }, { passive: false });
  });

  function panelSrc(key) {
    var img = viewer.querySelector('.panel[data-key="' + key + '"] img');
    return img ? img : null;
  }

  function showBlink() {
    var key = blinkOnA ? blinkA.value : blinkB.value;
    var source = panelSrc(key);
    if (!source) return;
    blinkImage.src = source.src;
    blinkImage.classList.toggle("lr", source.classList.contains("lr"));
    var label = (blinkOnA ? blinkA : blinkB).selectedOptions[0].textContent;
    document.getElementById("blink-showing").textContent = label;
    document.body.dataset.blink = key;
    draw();
  }
  blinkA.addEventListener("change", showBlink);
  blinkB.addEventListener("change", showBlink);

  document.addEventListener("keydown", function (event) {
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    if (event.key === "b" || event.key === "B") { blinkOnA = !blinkOnA; showBlink(); }
    if (event.key === "+" || event.key === "=") zoomBy(1, ports[0].clientWidth / 2, ports[0].clientHeight / 2);
    if (event.key === "-") zoomBy(-1, ports[0].clientWidth / 2, ports[0].clientHeight / 2);
  });

  inputs.forEach(function (input) {
    input.addEventListener("change", function () {
      var v = inputs.map(function (i) { return parseInt(i.value, 10) || 0; });
      state.crop = { x: v[0], y: v[1], w: v[2], h: v[3] };
      draw();
    });
  });

  var form = document.getElementById("figure-form");
  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    var base = form.getAttribute("action").replace(/\.(png|pdf)$/, "");
    form.setAttribute("action", base + "." + (button ? button.dataset.format : "png"));
    var keys = Array.prototype.map.call(
      form.querySelectorAll(".figure-method:checked"), function (c) { return c.value; });
    document.getElementById("figure-methods").value = keys.join(",");
  });

  var loaded = 0;
  function countLoaded() {
    loaded += 1;
    document.body.dataset.loaded = loaded;
    if (loaded === images.length) document.body.dataset.allLoaded = "yes";
  }
  images.forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) countLoaded();
    else img.addEventListener("load", countLoaded);
  });
  document.body.dataset.panels = images.length;
  state.crop = { x: 0, y: 0, w: parseInt(inputs[2].value, 10), h: parseInt(inputs[3].value, 10) };
  showBlink();
  draw();
})();
