/* A small stacked bar chart in SVG (no third-party library: the gateway may run offline). */
"use strict";
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#4f7cff", "#ff8a3d", "#2bb673", "#c44fd6", "#e5484d", "#00a3bf", "#9a7b00", "#6e6e6e"];

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // Enough digits to be true: a limit of $0.0012 never reads $0.00.
  function money(v) {
    return "$" + (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v >= 0.01 || v === 0 ? v.toFixed(4) : v.toPrecision(2));
  }

  /* dates: ["2026-11-01", …]; series: {name: [value per date]}. Replaces the container's content. */
  function stackedBars(container, dates, series, emptyText) {
    var names = Object.keys(series);
    container.textContent = "";
    var totals = dates.map(function (_, i) {
      return names.reduce(function (sum, n) { return sum + (series[n][i] || 0); }, 0);
    });
    var max = Math.max.apply(null, totals.concat([0]));
    // Axis labels: three when there is spend, one "$0" when there is none; the plot starts
    // after the longest, so none loses its "$" (11 px text: about 7 px a character).
    var ticks = max ? [0, 0.5, 1] : [0];
    var labels = ticks.map(function (f) { return f ? money(max * f) : "$0"; });
    var longest = Math.max.apply(null, labels.map(function (t) { return t.length; }));
    // Drawn at the container's own width, so text keeps its size on a phone.
    var W = Math.max(280, Math.round(container.clientWidth) - 20), H = 220, bottom = 22, top = 8;
    var left = 12 + 7 * longest;
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "class": "bars"});
    var plotH = H - bottom - top, step = (W - left) / Math.max(dates.length, 1);
    ticks.forEach(function (f, i) {
      var y = top + plotH * (1 - f);
      svg.appendChild(el("line", {x1: left, x2: W, y1: y, y2: y, "class": "grid"}));
      svg.appendChild(el("text", {x: left - 4, y: y + 4, "text-anchor": "end", "class": "axis"},
                         labels[i]));
    });
    dates.forEach(function (d, i) {
      var y = top + plotH;
      names.forEach(function (n, k) {
        var v = series[n][i] || 0;
        if (!v || !max) { return; }
        var h = plotH * v / max;
        y -= h;
        var rect = el("rect", {x: left + i * step + step * 0.15, y: y, width: step * 0.7, height: h,
                               fill: COLORS[k % COLORS.length]});
        rect.appendChild(el("title", {}, d + " · " + n + ": " + money(v)));
        svg.appendChild(rect);
      });
      if (i % Math.ceil(dates.length / Math.max(2, Math.floor(W / 90))) === 0) {
        svg.appendChild(el("text", {x: left + i * step + step / 2, y: H - 6, "text-anchor": "middle",
                                    "class": "axis"}, d.slice(5)));
      }
    });
    container.appendChild(svg);
    var legend = document.createElement("ul");
    legend.className = "legend";
    if (!names.length) {
      var li = document.createElement("li");
      li.textContent = emptyText || "";
      legend.appendChild(li);
    }
    names.forEach(function (n, k) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch c" + (k % COLORS.length);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(n));
      legend.appendChild(item);
    });
    container.appendChild(legend);
  }

  window.CCGateChart = {stackedBars: stackedBars, money: money};
})();
