// Behaviour the pages need, from a static file: the CSP allows no inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // <select data-autosubmit>: submit its form on change (the alerts filter).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  // <input type=checkbox data-select-all="FORM">: tick or untick every checkbox of that form.
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll(`input[type=checkbox][form="${all.dataset.selectAll}"]`)) {
        box.checked = all.checked;
      }
    });
  }
});
