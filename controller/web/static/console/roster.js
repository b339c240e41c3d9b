// The roster page's officer and desk forms: PUT the form as JSON to the API route named
// by data-put (its {id} from the form's id field, or made from the name), then an
// officer's photo file as the raw body of data-photo, then reload the page. The "Edit"
// buttons fill a form from their data-values. A refusal's reason is said by errors.js,
// as on every page. (A file of the controller's own: the pages' Content Security Policy
// allows no inline script.)
(function () {
  "use strict";
  function slug(text) {
    return (text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[đĐ]/g, "d").toLowerCase().replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "").slice(0, 63);
  }
  function show(form, text, error) {
    var out = document.getElementById(form.dataset.outcome);
    if (!out) { return; }
    out.textContent = text;
    out.classList.toggle("error", !!error);
  }
  function send(method, url, body, type) {
    return fetch(url, {
      method: method, body: body, credentials: "same-origin",
      headers: {"Content-Type": type, "X-CSRF-Token": window.ttConsole.csrf() || ""}
    }).then(function (resp) {
      if (resp.ok) { return resp; }
      return resp.text().then(function (text) {
        throw new Error(window.ttConsole.reason(resp.status, text));
      });
    }, function () {  // no answer at all
      throw new Error(window.ttConsole.reason(0, null));
    });
  }
  function submit(form) {
    var idField = form.elements.namedItem("id");
    if (!idField.value) {
      var source = document.getElementById(idField.dataset.slugOf);
      idField.value = slug(source ? source.value : "");
    }
    var id = encodeURIComponent(idField.value);
    var body = {};
    var file = null;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.name === "id") { return; }
      if (field.type === "file") { file = field.files && field.files[0]; return; }
      body[field.name] = field.value.trim() === "" ? null : field.value.trim();
    });
    if (file && form.dataset.maxPhoto && file.size > Number(form.dataset.maxPhoto)) {
      show(form, form.dataset.tooBig || "", true);
      return;
    }
    show(form, "…", false);
    send("PUT", form.dataset.put.replace("{id}", id), JSON.stringify(body), "application/json")
      .then(function () {
        if (file) {
          return send("PUT", form.dataset.photo.replace("{id}", id), file,
                      file.type || "application/octet-stream");
        }
        return null;
      })
      .then(function () { window.location.reload(); })
      .catch(function (err) { show(form, err.message, true); });
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.dataset || !form.dataset.put) { return; }
    event.preventDefault();
    submit(form);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-fill]") : null;
    if (!button) { return; }
    var form = document.getElementById(button.dataset.fill);
    var values = JSON.parse(button.dataset.values || "{}");
    Object.keys(values).forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field) { field.value = values[name] === null ? "" : values[name]; }
    });
    form.scrollIntoView({block: "center"});
    var first = form.querySelector("input:not([type=hidden]), select");
    if (first) { first.focus(); }
  });
})();
