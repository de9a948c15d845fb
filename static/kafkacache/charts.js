// Draws the overview's plotly figures. Each <div class="plotly-chart" data-figure="ID">
// has its figure (data, layout, config) in <script type="application/json" id="ID">,
// which is data, not script: the CSP allows no inline script (dashboard/charts.py).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("div.plotly-chart[data-figure]")) {
    const source = document.getElementById(el.dataset.figure);
    if (!source) continue;
    const figure = JSON.parse(source.textContent);
    window.Plotly.newPlot(el, figure.data, figure.layout, figure.config);
  }
});
