// Why a request failed, said one way on every console page (operator.js, roster.js,
// provisioning.js and technician.js call window.ttConsole.reason; the first three take
// the session's CSRF token from window.ttConsole.csrf). The controller answers a refusal as
// {"error": "..."} in the page's language when its catalog has the sentence (the answer
// then also carries "error_en"); otherwise the reason is English, so a lead in the page's
// language, chosen by HTTP status (0: no answer at all), goes before it. The leads come
// translated in <body data-errors>. (A file of the controller's own: the pages' Content
// Security Policy allows no inline script.)
(function () {
  "use strict";
  var leads = null;

  function lead(status) {
    if (leads === null) {
      try {
        leads = JSON.parse(document.body.getAttribute("data-errors") || "{}");
      } catch (e) {
        leads = {};
      }
    }
    return leads[String(status)] || leads.other || "";
  }

  function parsed(body) {
    if (typeof body !== "string") { return body; }
    try { return JSON.parse(body); } catch (e) { return null; }
  }

  // The answer's reason as the page shows it: the API's message when it is in the page's
  // language, else "<lead>: <message>", or the lead alone when there is no message.
  function reason(status, body) {
    var data = parsed(body);
    var message = data && typeof data === "object" && typeof data.error === "string" ?
      data.error : "";
    var inPageLanguage = document.documentElement.lang === "en" ||
      (message !== "" && typeof data.error_en === "string");
    if (message && inPageLanguage) { return message; }
    var head = lead(status);
    if (!message) { return status ? head + " (HTTP " + status + ")" : head; }
    return head + ": " + message;
  }

  // The session's CSRF token, which every state-changing request carries.
  function csrf() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"];
    } catch (e) {
      return null;
    }
  }

  window.ttConsole = window.ttConsole || {};
  window.ttConsole.reason = reason;
  window.ttConsole.csrf = csrf;
}());
