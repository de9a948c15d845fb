// Draws the overview's plotly figures from their JSON data blocks (no inline script:
// the pages run under a strict CSP). A click on a bar whose point carries a URL
// (customdata) opens it: the findings list filtered to that category and severity.
(function () {
  "use strict";
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;

  function themed(layout) {
    var ink = dark ? "#e3e7ec" : "#1d2430";
    var grid = dark ? "#2c3440" : "#e3e6ea";
    layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.plot_bgcolor = "rgba(0,0,0,0)";
    layout.font = Object.assign({}, layout.font || {}, { color: ink });
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        layout[key].gridcolor = grid;
        layout[key].zerolinecolor = grid;
      }
    });
    return layout;
  }

  function draw(el) {
    var block = document.getElementById(el.id + "-figure");
    if (!block || !window.Plotly) {
      return;
    }
    var figure = JSON.parse(block.textContent);
    window.Plotly.newPlot(el, figure.data, themed(figure.layout || {}), figure.config || {}).then(function () {
      el.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var url = point && point.customdata;
        if (typeof url === "string" && url.charAt(0) === "/") {
          window.location.href = url;
        }
      });
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
