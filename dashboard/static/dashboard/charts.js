// Draws the overview's plotly figures from their JSON data blocks (no inline script:
// the pages run under a strict CSP). A click on a bar whose point carries a URL
// (customdata) opens it: the findings list filtered to that category and severity.
// Colours follow the light or dark theme (prefers-color-scheme), also when it changes
// while the page is open; each chart says which it drew in data-theme.
(function () {
  "use strict";
  var scheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function theme() {
    return scheme && scheme.matches ? "dark" : "light";
  }

  // The layout keys a theme sets, as Plotly.relayout takes them ("font.color", "xaxis.gridcolor").
  function colours(layout) {
    var dark = theme() === "dark";
    var ink = dark ? "#e3e7ec" : "#1d2430";
    var grid = dark ? "#2c3440" : "#e3e6ea";
    var update = { paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", "font.color": ink };
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        update[key + ".gridcolor"] = grid;
        update[key + ".zerolinecolor"] = grid;
      }
    });
    return update;
  }

  function themed(layout) {
    var update = colours(layout);
    Object.keys(update).forEach(function (path) {
      var parts = path.split(".");
      if (parts.length === 1) {
        layout[path] = update[path];
      } else {
        layout[parts[0]] = Object.assign({}, layout[parts[0]] || {});
        layout[parts[0]][parts[1]] = update[path];
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
    var drawn = theme();
    window.Plotly.newPlot(el, figure.data, themed(figure.layout || {}), figure.config || {}).then(function () {
      el.dataset.theme = drawn;
      el.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var url = point && point.customdata;
        if (typeof url === "string" && url.charAt(0) === "/") {
          window.location.href = url;
        }
      });
    });
  }

  function charts() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-chart]"));
  }

  function recolour() {
    var now = theme();
    charts().forEach(function (el) {
      if (el.layout && el.dataset.theme && el.dataset.theme !== now) {
        window.Plotly.relayout(el, colours(el.layout)).then(function () {
          el.dataset.theme = now;
        });
      }
    });
  }

  function start() {
    charts().forEach(draw);
    if (scheme && scheme.addEventListener) {
      scheme.addEventListener("change", recolour);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
