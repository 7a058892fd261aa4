/* A tenant's own page: the key stays in sessionStorage and is only sent to this gateway's /usage. */
"use strict";
(function () {
  var i18n = window.CCGateI18n, ui = window.CCGateUI, chart = window.CCGateChart;
  var STORE = "ccgate-key";
  var last = null;

  function key() { try { return sessionStorage.getItem(STORE); } catch (e) { return null; } }

  function showError(text) {
    var el = document.getElementById("key-error");
    el.textContent = text;
    el.hidden = !text;
  }

  function render() {
    if (!last) { return; }
    var u = last, today = u.today, empty = i18n.t("none");
    document.getElementById("me-name").textContent = u.tenant.name;
    ui.setList(document.getElementById("me-today"), [
      ["requests", ui.num(today.requests)], ["errors", ui.num(today.errors)],
      ["tokens", ui.num(today.totalTokens)], ["cost", ui.money(today.costUSD)]]);
    var pairs = [], d = u.limits.daily;
    if (d) {
      pairs.push(["me.limit", ui.money(d.maxUSD)], ["me.used", ui.money(d.usedUSD)],
                 ["me.remaining", ui.money(d.remainingUSD)],
                 ["me.resets", new Date(d.resetsAt).toLocaleString()]);
    } else {
      pairs.push(["me.limit", i18n.t("noLimit")]);
    }
    // Every other configured window: used / limit, and when it resets.
    ui.otherWindows.forEach(function (name) {
      var w = u.limits[name];
      if (w) {
        pairs.push(["me." + name, ui.money(w.usedUSD) + " / " + ui.money(w.maxUSD) +
                    (w.resetsAt ? " · " + i18n.t("me.resets") + " " +
                     new Date(w.resetsAt).toLocaleString() : "")]);
      }
    });
    ui.setList(document.getElementById("me-limits"), pairs);
    var series = {};
    series[u.tenant.name] = u.history.map(function (h) { return h.costUSD; });
    chart.stackedBars(document.getElementById("me-chart"), u.history.map(function (h) { return h.date; }),
                      series, empty);
    var models = Object.keys(today.byModel);
    ui.setRows(document.getElementById("me-models"), models.map(function (name) {
      var c = today.byModel[name];
      return [name, ui.num(c.requests), ui.num(c.totalTokens), ui.money(c.costUSD)];
    }), empty);
  }

  function load() {
    var k = key();
    if (!k) { return; }
    fetch(location.origin + "/usage?days=30", {headers: {"x-api-key": k}, cache: "no-store", credentials: "omit"})
      .then(function (r) {
        if (r.status === 401 || r.status === 403) {
          try { sessionStorage.removeItem(STORE); } catch (e) { /* storage off */ }
          document.getElementById("me-data").hidden = true;
          showError(i18n.t("me.badKey"));
          return null;
        }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (body) {
        if (!body) { return; }
        last = body;
        showError("");
        document.getElementById("me-data").hidden = false;
        render();
      })
      .catch(function (err) { showError(i18n.t("loadFailed") + " " + err.message); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = document.getElementById("key-input");
      try { sessionStorage.setItem(STORE, input.value.trim()); } catch (e) { /* storage off */ }
      input.value = "";
      load();
    });
    document.getElementById("forget").addEventListener("click", function () {
      try { sessionStorage.removeItem(STORE); } catch (e) { /* storage off */ }
      last = null;
      document.getElementById("me-data").hidden = true;
    });
    i18n.onChange(render);
    load();
    setInterval(load, 30000);
  });
})();
