// myNEWS in the browser: live alerts (server-sent events from /events) shown as they arrive,
// the reader's time zone passed along, and Web Push through a service worker when the
// deployment has a VAPID key. No build step: this file is served as is.
(function () {
  "use strict";
  var body = document.body;
  var tz = "";
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { tz = ""; }
  document.querySelectorAll("[data-timezone]").forEach(function (input) {
    if (!input.value) input.value = tz;
  });
  document.querySelectorAll(".tz").forEach(function (el) {
    if (el.textContent === "UTC" && tz) el.textContent = tz;
  });

  if (body.dataset.user && window.EventSource) {
    var region = document.getElementById("alerts");
    var source = new EventSource("/events?tz=" + encodeURIComponent(tz));
    source.addEventListener("alert", function (event) {
      var a;
      try { a = JSON.parse(event.data); } catch (e) { return; }
      var id = "alert-" + (a.collapse_id || a.story_id);
      var old = document.getElementById(id);
      var box = document.createElement("div");
      box.className = "alert" + (a.retracted ? " retracted" : a.urgency === 1 ? " flash" : "") +
        (a.correction && !a.retracted ? " correction" : "");
      box.id = id;
      box.setAttribute("data-story", a.story_id);
      var label = document.createElement("strong");
      label.textContent = a.retracted ? "Withdrawn" : a.correction ? "Correction" : (a.urgency === 1 ? "Breaking" : "Alert");
      // A withdrawn alert replaces the one shown, and links nowhere (its story may be killed).
      var link = document.createElement(a.retracted ? "span" : "a");
      if (!a.retracted) link.href = a.url;
      link.textContent = a.headline;
      var close = document.createElement("button");
      close.type = "button";
      close.className = "link";
      close.setAttribute("aria-label", "Dismiss alert");
      close.textContent = "×";
      close.addEventListener("click", function () { box.remove(); });
      box.append(label, " ", link, " ", close);
      if (old) old.replaceWith(box); else region.prepend(box);
    });
  }

  var push = document.getElementById("push");
  if (push && body.dataset.vapid && "serviceWorker" in navigator && "PushManager" in window) {
    var state = document.getElementById("push-state");
    push.addEventListener("click", function () {
      navigator.serviceWorker.register("/sw.js").then(function (reg) {
        var key = body.dataset.vapid.replace(/-/g, "+").replace(/_/g, "/");
        var raw = atob(key + "===".slice((key.length + 3) % 4));
        var bytes = new Uint8Array(raw.length);
        for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
        return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes });
      }).then(function (sub) {
        return fetch("/api/v1/push", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ subscription: sub.toJSON(), timezone: tz })
        });
      }).then(function (r) {
        state.textContent = r.ok ? "On for this device." : "The server refused the subscription.";
      }).catch(function (e) {
        state.textContent = "Not available: " + e.message;
      });
    });
  } else if (push) {
    push.hidden = true;
  }
})();
