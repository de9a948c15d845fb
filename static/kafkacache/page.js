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
  // A region that scrolls sideways (a wide table on a phone) and holds nothing focusable gets a
  // tab stop, so it scrolls from the keyboard too (axe-core: scrollable-region-focusable), named
  // after its table's caption. Looked at again whenever the width changes.
  const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  const scrollStops = () => {
    for (const region of document.querySelectorAll(".table-scroll, main table, pre")) {
      const scrolls = region.scrollWidth > region.clientWidth;
      if (scrolls && !region.hasAttribute("tabindex") && !region.querySelector(FOCUSABLE)) {
        region.tabIndex = 0;
        region.dataset.scrollStop = "";
        const caption = region.tagName === "TABLE" ? null : region.querySelector("caption");
        if (caption) {
          region.setAttribute("role", "region");
          region.setAttribute("aria-label", caption.textContent.trim());
        }
      } else if (!scrolls && "scrollStop" in region.dataset) {
        for (const name of ["tabindex", "role", "aria-label", "data-scroll-stop"]) {
          region.removeAttribute(name);
        }
      }
    }
  };
  scrollStops();
  window.addEventListener("resize", scrollStops);
});
