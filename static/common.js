/* Helpers shared by the dashboard pages: formatting and safe table rendering (textContent only). */
"use strict";
(function () {
  var i18n = window.CCGateI18n;

  function num(v) { return (v || 0).toLocaleString(i18n.lang() === "zh" ? "zh-CN" : "en-US"); }
  function pct(v) { return ((v || 0) * 100).toFixed(1) + "%"; }

  function setRows(table, rows, emptyText) {
    var body = table.querySelector("tbody");
    body.textContent = "";
    if (!rows.length) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = table.querySelectorAll("thead th").length;
      td.className = "empty";
      td.textContent = emptyText;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    // Each cell carries its column's name: on a phone a row is shown as a card of labelled lines.
    var labels = Array.prototype.map.call(table.querySelectorAll("thead th"),
                                          function (th) { return th.textContent; });
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (cell, i) {
        var td = document.createElement("td");
        if (cell instanceof Node) { td.appendChild(cell); } else { td.textContent = cell; }
        td.setAttribute("data-label", labels[i] || "");
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function setList(dl, pairs) {
    dl.textContent = "";
    pairs.forEach(function (p) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = i18n.t(p[0]);
      dd.textContent = p[1];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
  }

  function bar(fraction) {
    var wrap = document.createElement("span");
    wrap.className = "meter";
    var fill = document.createElement("span");
    fill.className = "fill" + (fraction >= 1 ? " over" : fraction >= 0.8 ? " warn" : "");
    fill.style.width = Math.min(100, Math.round(fraction * 100)) + "%";
    wrap.appendChild(fill);
    var label = document.createElement("span");
    label.className = "meter-label";
    label.textContent = pct(fraction);
    var box = document.createElement("span");
    box.appendChild(wrap);
    box.appendChild(label);
    return box;
  }

  // The spend windows, named once on the server (config/settings.py SPEND_WINDOWS).
  var spendWindows = JSON.parse(document.body.dataset.spendWindows || "[]");

  window.CCGateUI = {num: num, pct: pct, setRows: setRows, setList: setList, bar: bar,
                     money: window.CCGateChart.money, spendWindows: spendWindows,
                     // every window but the day, which the pages show on its own
                     otherWindows: spendWindows.filter(function (n) { return n !== "daily"; })};
})();
