/* Copy buttons next to the links a researcher hands out. */
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest(".copy-link") : null;
  if (!button) return;
  event.preventDefault();
  var text = button.dataset.copy;
  function done() { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { window.prompt("Copy this link:", text); });
  } else {
    window.prompt("Copy this link:", text);
  }
});
