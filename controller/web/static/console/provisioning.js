// The Devices page's forms that put devices into service: a device's bundle made by the
// controller (/api/v1/devices/bundle answers a zip, saved by the browser as ID.zip; the
// Wi-Fi key is cleared from the form once sent), a device's card file
// (thanthien-provision bundle) read here and POSTed as JSON to /api/v1/devices/import
// (?replace=true to let new hardware take a known id's place), and an enrolment token
// asked of /api/v1/enrolments and shown once with the bundle command that uses it.
// Each outcome goes to the page's outcome area (a refusal's reason said by errors.js, as
// on every page); then the lists below are reloaded in place, so the outcome and the
// token stay in view. (A file of the controller's own: the pages' Content Security Policy
// allows no inline script.)
(function () {
  "use strict";
  function show(form, text, error) {
    var out = document.getElementById(form.dataset.outcome);
    if (!out) { return; }
    out.textContent = text;
    out.classList.toggle("error", !!error);
  }
  // The answer's JSON (or, asFile, its body as a Blob); a refusal throws its reason.
  function post(url, body, asFile) {
    return fetch(url, {
      method: "POST", body: JSON.stringify(body), credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": window.ttConsole.csrf() || ""}
    }).then(function (resp) {
      if (resp.ok && asFile) { return resp.blob(); }
      return resp.text().then(function (text) {
        if (!resp.ok) { throw new Error(window.ttConsole.reason(resp.status, text)); }
        return JSON.parse(text);
      });
    }, function () {
      throw new Error(window.ttConsole.reason(0, ""));
    });
  }
  // The device lists as the server draws them now, put in place of the old ones.
  function reloadLists() {
    return fetch(window.location.href, {credentials: "same-origin"})
      .then(function (resp) { return resp.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html")
          .getElementById("device-lists");
        var lists = document.getElementById("device-lists");
        if (!fresh || !lists) { return; }
        lists.innerHTML = fresh.innerHTML;
        if (window.htmx) { window.htmx.process(lists); }
      });
  }
  function fill(template, id) { return (template || "").replace("{id}", id); }
  function optional(value) { value = (value || "").trim(); return value === "" ? null : value; }

  // The blob saved by the browser as `name` (an <a download> clicked), its URL let go after.
  function save(blob, name) {
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function makeBundle(form) {
    var f = form.elements;
    var id = f.device_id.value.trim();
    var body = {device_id: id, role: f.role.value,
                hamlet: optional(f.hamlet.value), desk: optional(f.desk.value),
                label: optional(f.label.value), os: optional(f.os.value),
                wifi_ssid: optional(f.wifi_ssid.value),
                wifi_key: f.wifi_key.value === "" ? null : f.wifi_key.value,
                apn: optional(f.apn.value),
                enrol: f.enrol.checked, replace: f.replace.checked};
    f.wifi_key.value = "";  // used for this card only: not left in the page
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;  // the controller makes one bundle at a time
    post("/api/v1/devices/bundle", body, true).then(function (blob) {
      save(blob, id + ".zip");
      show(form, fill(form.dataset.done, id), false);
      form.reset();
      return reloadLists();
    }).catch(function (err) {
      show(form, err.message, true);
    }).then(function () { button.disabled = false; });
  }

  function importCard(form) {
    var file = form.elements.card.files[0];
    if (!file) { return; }
    var reader = new FileReader();
    reader.onload = function () {
      var card;
      try { card = JSON.parse(reader.result); } catch (e) { card = undefined; }
      if (!card || typeof card !== "object" || Array.isArray(card)) {
        show(form, form.dataset.unreadable, true);
        return;
      }
      var url = "/api/v1/devices/import" + (form.elements.replace.checked ? "?replace=true" : "");
      post(url, card).then(function (answer) {
        show(form, fill(answer.replaced ? form.dataset.replaced : form.dataset.imported,
                        answer.id), false);
        form.reset();
        return reloadLists();
      }).catch(function (err) { show(form, err.message, true); });
    };
    reader.onerror = function () { show(form, form.dataset.unreadable, true); };
    reader.readAsText(file);
  }

  function createEnrolment(form) {
    var f = form.elements;
    var body = {device_id: f.device_id.value.trim(), role: f.role.value,
                hamlet: optional(f.hamlet.value), desk: optional(f.desk.value),
                ttl_h: Number(f.ttl_h.value)};
    post("/api/v1/enrolments", body).then(function (answer) {
      document.getElementById("enrol-token-value").textContent = answer.token;
      document.getElementById("enrol-token-command").textContent =
        "thanthien-provision bundle " + answer.device_id + " --role " + answer.role +
        " --enrol-token " + answer.token;
      document.getElementById("enrol-token").hidden = false;
      show(form, fill(form.dataset.done, answer.device_id), false);
      form.reset();
      return reloadLists();
    }).catch(function (err) { show(form, err.message, true); });
  }

  function copyToken(button) {
    var code = document.getElementById("enrol-token-value");
    var done = function () { button.textContent = button.dataset.copied; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(done, function () {});
    } else {  // plain http on the commune's network: select it for Ctrl+C
      var range = document.createRange();
      range.selectNodeContents(code);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id === "new-bundle") { event.preventDefault(); makeBundle(form); }
    if (form.id === "import-card") { event.preventDefault(); importCard(form); }
    if (form.id === "new-enrolment") { event.preventDefault(); createEnrolment(form); }
  });
  document.addEventListener("click", function (event) {
    if (event.target.id === "enrol-token-copy") { copyToken(event.target); }
  });
}());
