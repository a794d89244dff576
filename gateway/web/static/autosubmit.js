// A named starting point with a vendor login form (URL -Form=post): submit the library's
// values at once. Without scripts the page's button does the same.
(function () {
  "use strict";
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
}());
