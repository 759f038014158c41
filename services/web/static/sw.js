// The service worker of myNEWS: shows a Web Push alert, and opens its story when clicked. A
// correction or a withdrawn alert carries the same tag, so it replaces the one shown; a
// withdrawn one comes quietly and opens the front page.
self.addEventListener("push", function (event) {
  var a = {};
  try { a = event.data ? event.data.json() : {}; } catch (e) { a = { headline: event.data && event.data.text() }; }
  var title = a.retracted ? "Alert withdrawn" : a.critical ? "Breaking news" : "Newsroom";
  event.waitUntil(self.registration.showNotification(title, {
    body: a.headline || "",
    tag: a.tag || a.story_id || "newsroom",
    renotify: false,
    silent: !!(a.correction || a.retracted),
    data: { url: a.story_id && !a.retracted ? "/story/" + a.story_id : "/" }
  }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
