/* The display check: the window's size, pixel ratio and screen size go with the form. The first
   visit measures and sends at once (data-submit-now); after a "too small" verdict the rater
   resizes the window and presses "Check again". */
(function (script) {
  "use strict";
  var form = document.getElementById("display-form");
  function measure() {
    form.viewport_width.value = Math.floor(window.innerWidth);
    form.viewport_height.value = Math.floor(window.innerHeight);
    form.dpr.value = window.devicePixelRatio || 1;
    form.screen_width.value = window.screen ? window.screen.width : "";
    form.screen_height.value = window.screen ? window.screen.height : "";
  }
  form.addEventListener("submit", measure);
  if (script.hasAttribute("data-submit-now")) { measure(); form.submit(); }
})(document.currentScript);
