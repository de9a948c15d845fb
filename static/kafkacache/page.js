// Behaviour the pages need, from a static file: the CSP allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // <select data-autosubmit>: submit its form on change (the alerts filter).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
});
