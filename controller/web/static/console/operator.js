// The radio operator's pages (controller/web/console/operator.py): forms that call the JSON
// API with the session's CSRF token, the upload progress bar, the recurrence editor that
// builds an RRULE, the emergency's two-step confirmation. No inline script (the pages'
// Content-Security-Policy forbids it); texts come translated in data-* attributes, and a
// refusal's reason is said by errors.js, as on every page.
(function () {
  "use strict";


  function send(method, url, body) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRF-Token", window.ttConsole.csrf() || "");
      xhr.setRequestHeader("Content-Type", "application/json");
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = xhr.responseText; }
        resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, data: data });
      };
      xhr.onerror = function () { resolve({ status: 0, ok: false, data: null }); };
      xhr.send(body === undefined ? null : JSON.stringify(body));
    });
  }

  function reason(result) {
    return window.ttConsole.reason(result.status, result.data);
  }

  function say(out, text, bad) {
    if (!out) { return; }
    out.textContent = text;
    out.classList.toggle("error", !!bad);
  }

  function checked(form, name) {
    return Array.prototype.map.call(
      form.querySelectorAll("input[name='" + name + "']:checked"), function (i) { return i.value; });
  }

  function value(form, name) {
    var field = form.elements.namedItem(name);
    return field ? field.value : "";
  }

  function localTime(iso) {
    return new Date(iso).toLocaleString(document.documentElement.lang === "vi" ? "vi-VN" : "en-GB",
      { timeZone: "Asia/Ho_Chi_Minh", dateStyle: "short", timeStyle: "short" });
  }

  // -- upload with a progress bar (htmx sends it, this follows it) -------------------------
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest ? event.target.closest("form.upload") : null;
    var bar = form && form.querySelector("progress");
    if (bar && event.detail.lengthComputable) {
      bar.max = event.detail.total;
      bar.value = event.detail.loaded;
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest ? event.target.closest("form.upload") : null;
    if (!form) { return; }
    var xhr = event.detail.xhr;
    var out = form.querySelector("output");
    if (xhr.status === 201) {
      say(out, form.dataset.done);
      window.location.reload();
    } else {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      say(out, form.dataset.failed + " " + reason({ status: xhr.status, data: data }), true);
    }
  });

  // -- targets -------------------------------------------------------------------------------
  function targets(form) {
    var kind = value(form, "target");
    if (kind === "hamlets") { return { hamlets: checked(form, "hamlet") }; }
    if (kind === "speakers") { return { speakers: checked(form, "speaker") }; }
    return { all: true };
  }

  // -- the recurrence editor -------------------------------------------------------------
  function rrule(form) {
    var freq = value(form, "freq");
    if (!freq) { return null; }
    var parts = ["FREQ=" + freq.toUpperCase()];
    var interval = parseInt(value(form, "interval"), 10);
    if (interval > 1) { parts.push("INTERVAL=" + interval); }
    if (freq === "weekly") {
      var days = checked(form, "byday");
      if (days.length) { parts.push("BYDAY=" + days.join(",")); }
    }
    if (freq === "monthly") {
      var day = parseInt(value(form, "bymonthday"), 10);
      if (day) { parts.push("BYMONTHDAY=" + day); }
    }
    var end = value(form, "end");
    if (end === "until" && value(form, "until")) {
      parts.push("UNTIL=" + value(form, "until").replace(/-/g, ""));
    } else if (end === "count" && value(form, "count")) {
      parts.push("COUNT=" + parseInt(value(form, "count"), 10));
    }
    return parts.join(";");
  }

  function broadcastBody(form) {
    var body = {
      audio_id: parseInt(value(form, "audio_id"), 10),
      start: value(form, "start"),
      targets: targets(form),
      level: value(form, "level") || "normal",
      overlap: form.querySelector("input[name='order']:checked") ? "order" : "reject"
    };
    var rule = rrule(form);
    if (rule) { body.rrule = rule; }
    if (value(form, "title")) { body.title = value(form, "title"); }
    return body;
  }

  function refreshEditor(form) {
    var freq = value(form, "freq");
    form.querySelectorAll("[data-when-freq]").forEach(function (el) {
      el.hidden = el.dataset.whenFreq.split(" ").indexOf(freq) < 0;
    });
    form.querySelectorAll("[data-when-target]").forEach(function (el) {
      el.hidden = el.dataset.whenTarget !== value(form, "target");
    });
    var shown = form.querySelector("output.rrule");
    if (shown) { shown.textContent = rrule(form) || "—"; }
  }

  function showCheck(out, result) {
    out.replaceChildren();
    if (!result.ok) {
      say(out, out.dataset.failed + " " + reason(result), true);
      return;
    }
    var data = result.data;
    var head = document.createElement("p");
    head.className = data.ok ? "ok" : "bad";
    head.textContent = (data.ok ? out.dataset.clear : out.dataset.conflict) + " " +
      out.dataset.speakers + " " + data.speakers.length;
    out.appendChild(head);
    var list = document.createElement("ul");
    (data.ok ? data.next.map(localTime) : data.problems).forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    out.appendChild(list);
    out.classList.remove("error");
  }

  function setUpSchedule(form) {
    var out = form.querySelector("output.result");
    form.addEventListener("change", function () { refreshEditor(form); });
    form.addEventListener("input", function () { refreshEditor(form); });
    refreshEditor(form);
    form.querySelector("button.check").addEventListener("click", function () {
      send("POST", "/api/v1/broadcasts/check", broadcastBody(form)).then(function (r) {
        showCheck(out, r);
      });
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send("POST", "/api/v1/broadcasts", broadcastBody(form)).then(function (r) {
        if (r.ok) {
          window.location.reload();
        } else {
          say(out, out.dataset.failed + " " + reason(r), true);
        }
      });
    });
  }

  // -- emergency: review, then confirm --------------------------------------------------------
  function emergencyBody(form) {
    var body = { audio_id: parseInt(value(form, "audio_id"), 10), targets: targets(form) };
    var repeat = parseFloat(value(form, "repeat_min"));
    var expires = parseFloat(value(form, "expires_h"));
    if (repeat) { body.repeat_s = repeat * 60; }
    if (expires) { body.expires_in_s = expires * 3600; }
    if (value(form, "title")) { body.title = value(form, "title"); }
    if (value(form, "replaces")) { body.replaces = parseInt(value(form, "replaces"), 10); }
    return body;
  }

  function label(form, name) {
    var field = form.elements.namedItem(name);
    if (field && field.tagName === "SELECT") {
      return field.selectedIndex >= 0 ? field.options[field.selectedIndex].text : "";
    }
    return field ? field.value : "";
  }

  function setUpEmergency(form) {
    var summary = document.getElementById("emergency-summary");
    var out = form.querySelector("output.result");
    form.addEventListener("change", function () { refreshEditor(form); });
    refreshEditor(form);
    form.addEventListener("submit", function (event) {  // step 1: the summary
      event.preventDefault();
      var t = targets(form);
      summary.querySelector("[data-field=audio]").textContent = label(form, "audio_id");
      summary.querySelector("[data-field=targets]").textContent =
        t.all ? summary.dataset.all : (t.hamlets || t.speakers).join(", ");
      summary.querySelector("[data-field=repeat]").textContent = value(form, "repeat_min");
      summary.querySelector("[data-field=expires]").textContent = value(form, "expires_h");
      summary.hidden = false;
      summary.querySelector("button.confirm").focus();
    });
    summary.querySelector("button.back").addEventListener("click", function () {
      summary.hidden = true;
    });
    summary.querySelector("button.confirm").addEventListener("click", function () {  // step 2
      send("POST", "/api/v1/broadcasts/emergency", emergencyBody(form)).then(function (r) {
        if (r.ok) {
          window.location.assign("/emergency?id=" + r.data.id);
        } else {
          summary.hidden = true;
          say(out, out.dataset.failed + " " + reason(r), true);
        }
      });
    });
  }

  // -- cancel buttons, quiet hours, volumes ---------------------------------------------------
  function setUpCancel(button) {
    button.addEventListener("click", function () {
      if (!window.confirm(button.dataset.question)) { return; }
      send("DELETE", button.dataset.cancel).then(function (r) {
        if (r.ok) {
          window.location.reload();
        } else {
          window.alert(reason(r));
        }
      });
    });
  }

  function setUpPut(form) {
    var out = form.querySelector("output.result");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var url, body;
      if (form.dataset.put === "quiet") {
        url = "/api/v1/speakers/quiet-hours";
        body = { from: value(form, "from"), to: value(form, "to") };
      } else {
        var key = value(form, "key");
        url = "/api/v1/" + form.dataset.put + "/" + encodeURIComponent(key) + "/volume";
        body = { volume: parseFloat(value(form, "volume")) / 100 };
      }
      send("PUT", url, body).then(function (r) {
        if (r.ok) {
          say(out, out.dataset.done);
          if (form.dataset.put !== "quiet") { window.location.reload(); }
        } else {
          say(out, out.dataset.failed + " " + reason(r), true);
        }
      });
    });
  }

  function setUp() {
    document.querySelectorAll("form.schedule").forEach(setUpSchedule);
    document.querySelectorAll("form.emergency").forEach(setUpEmergency);
    document.querySelectorAll("button[data-cancel]").forEach(setUpCancel);
    document.querySelectorAll("form[data-put]").forEach(setUpPut);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
}());
