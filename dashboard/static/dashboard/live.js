// Live refresh for running loads, replays and runs, with no inline script (the pages run
// under a strict Content-Security-Policy). Elements opt in with data attributes:
//   data-live-url="<JSON status URL>" [data-live-interval="<seconds>"]
//     polls the URL; fills the element's [data-field="processed|total|published|progress"]
//     children from the answer; reloads the page once the status leaves queued/running.
//   data-live-reload="<seconds>"
//     reloads the page after that many seconds (a list with live rows).
// Polling pauses while the tab is hidden, and backs off when the server does not answer.
(function () {
  "use strict";
  var ACTIVE = ["queued", "running"];

  function fill(el, body) {
    var fields = el.querySelectorAll("[data-field]");
    Array.prototype.forEach.call(fields, function (node) {
      var name = node.getAttribute("data-field");
      if (name === "status") {
        return; // the page says what a finished status means once it reloads
      }
      if (name === "progress") {
        if (body.total) {
          node.max = body.total;
          node.value = body.processed || 0;
        }
      } else if (body[name] !== undefined && body[name] !== null) {
        node.textContent = typeof body[name] === "number" ? body[name].toLocaleString("en") : body[name];
      }
    });
  }

  function poll(el) {
    var url = el.getAttribute("data-live-url");
    var every = (parseFloat(el.getAttribute("data-live-interval")) || 3) * 1000;
    var wait = every;

    function tick() {
      if (document.hidden) {
        window.setTimeout(tick, every);
        return;
      }
      window
        .fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(String(response.status));
          }
          return response.json();
        })
        .then(function (body) {
          wait = every;
          fill(el, body);
          if (ACTIVE.indexOf(body.status) < 0) {
            window.location.reload();
            return;
          }
          window.setTimeout(tick, every);
        })
        .catch(function () {
          wait = Math.min(wait * 2, 60000);
          window.setTimeout(tick, wait);
        });
    }
    window.setTimeout(tick, every);
  }

  function reloadLater(el) {
    var seconds = parseFloat(el.getAttribute("data-live-reload")) || 5;
    function busy() {
      // Never reload under someone's hands: a field being typed in, a menu or a panel open.
      var active = document.activeElement;
      return (
        (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) ||
        document.querySelector("details[open]") !== null
      );
    }
    function tick() {
      if (document.hidden || busy()) {
        window.setTimeout(tick, seconds * 1000);
        return;
      }
      window.location.reload();
    }
    window.setTimeout(tick, seconds * 1000);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-url]"), poll);
    var reloads = document.querySelectorAll("[data-live-reload]");
    if (reloads.length) {
      reloadLater(reloads[0]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
