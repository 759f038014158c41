// The service worker of myNEWS: shows a Web Push alert, and opens its story when clicked.
self.addEventListener("push", function (event) {
  var a = {};
  try { a = event.data ? event.data.json() : {}; } catch (e) { a = { headline: event.data && event.data.text() }; }
  var title = a.urgency === 1 ? "Breaking news" : "Newsroom";
  event.waitUntil(self.registration.showNotification(title, {
    body: a.headline || "",
    tag: a.collapse_id || a.story_id || "newsroom",
    data: { url: a.story_id ? "/story/" + a.story_id : "/" }
  }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
