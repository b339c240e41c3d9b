// The technician's and admin's buttons post to the JSON API with htmx; this shows each
// answer: a short "done" text, the API's reason when refused, a token shown once, or a
// reload of the page where a list changed. The reason is said by errors.js, as on every
// page. (A file of the controller's own: the pages' Content Security Policy allows no
// inline script.)
(function () {
  "use strict";
  function reason(xhr) {
    return window.ttConsole.reason(xhr.status, xhr.responseText);
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.dataset) { return; }
    var target = elt.dataset.outcome ? document.getElementById(elt.dataset.outcome) : null;
    var xhr = event.detail.xhr;
    if (event.detail.successful) {
      if (elt.dataset.field && target) {
        var value = "";
        try { value = JSON.parse(xhr.responseText)[elt.dataset.field]; } catch (e) { value = ""; }
        target.textContent = (elt.dataset.done || "") + " " + value;
        target.classList.remove("error");
        if (elt.tagName === "FORM") { elt.reset(); }
        return;
      }
      if (elt.hasAttribute("data-reload")) { window.location.reload(); return; }
      if (target) { target.textContent = elt.dataset.done || ""; target.classList.remove("error"); }
    } else if (target && xhr) {
      target.textContent = reason(xhr);
      target.classList.add("error");
    }
  });
})();
