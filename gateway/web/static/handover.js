// The session hand-over page on a proxied host: the hidden images give the database's other
// hosts their own session cookie (each runs its own hand-over through the login host), so
// that the vendor's first fetch() to one of them finds a session there. Once they have all
// answered (or after 3 s), go on to the page the patron asked for.
(function () {
  "use strict";
  var next = document.querySelector("a[data-continue]");
  if (!next) { return; }
  var gone = false;
  function go() {
    if (!gone) { gone = true; location.replace(next.href); }
  }
  var images = Array.prototype.slice.call(document.querySelectorAll("img[data-warm]"));
  var left = images.length;
  function done() {
    left -= 1;
    if (left <= 0) { go(); }
  }
  images.forEach(function (img) {
    if (img.complete) { done(); return; }
    img.addEventListener("load", done);
    img.addEventListener("error", done);
  });
  if (left <= 0) { go(); }
  setTimeout(go, 3000);
}());
