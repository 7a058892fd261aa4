/* Admin dashboard: reads the admin JSON API and refreshes every 10 s without reloading the page. */
"use strict";
(function () {
  var i18n = window.CCGateI18n, ui = window.CCGateUI, chart = window.CCGateChart;
  var manage = window.CCGateConsole;
  var api = document.body.getAttribute("data-api");
  var data = {};

  function get(path) {
    // location.origin never holds user:password@ (a URL with credentials cannot be fetched).
    return fetch(location.origin + api + path, {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  function totals(c) {
    return [["requests", ui.num(c.requests)], ["errors", ui.num(c.errors)],
            ["tokens", ui.num(c.totalTokens)], ["cacheHitRate", ui.pct(c.cacheHitRate)],
            ["cost", ui.money(c.costUSD)]];
  }

  function costPair(c) {  // requests · tokens · list price → what the upstream charges
    return ui.num(c.requests) + " · " + ui.num(c.totalTokens) + " · " + ui.money(c.listCostUSD) +
      " → " + ui.money(c.upstreamCostUSD);
  }

  function render() {
    var o = data.overview, empty = i18n.t("none");
    if (!o) { return; }
    var problem = document.getElementById("config-problem");
    problem.hidden = !o.configProblem;
    problem.textContent = o.configProblem ? "⚠ " + o.configProblem : "";
    ui.setList(document.getElementById("today-totals"), totals(o.today));
    ui.setList(document.getElementById("month-totals"), totals(o.month));
    chart.stackedBars(document.getElementById("cost-chart"), o.costByDay.dates, o.costByDay.tenants, empty);
    function limitsCell(t) {  // the daily bar, then every other configured window as used/limit
      var cell = document.createElement("span"), parts = [];
      if (t.dailyLimitUsed !== null) { cell.appendChild(ui.bar(t.dailyLimitUsed)); }
      ui.otherWindows.forEach(function (name) {
        var w = t.windows && t.windows[name];
        if (w) { parts.push(i18n.t("me." + name) + " " + ui.money(w.usedUSD) + "/" + ui.money(w.maxUSD)); }
      });
      if (parts.length) { cell.appendChild(document.createTextNode(" " + parts.join(" · "))); }
      if (!cell.childNodes.length) { cell.textContent = i18n.t("noLimit"); }
      return cell;
    }
    ui.setRows(document.getElementById("tenants-table"), data.tenants.map(function (t) {
      return [t.name + " (" + t.id + ")", ui.num(t.today.requests), ui.num(t.today.totalTokens),
              ui.money(t.today.costUSD), ui.money(t.month.costUSD) +
                (Math.abs(t.month.listCostUSD - t.month.costUSD) > 1e-9 ? " (" + i18n.t("e.list") + " " + ui.money(t.month.listCostUSD) + ")" : ""),
              limitsCell(t),
              i18n.t(t.expired ? "expired" : t.enabled ? "enabled" : "disabled"),
              t.allowedModels.join(", "), manage.tenantActions(t)];
    }), empty);
    var models = Object.keys(o.models.month).sort();
    ui.setRows(document.getElementById("models-table"), models.map(function (m) {
      var d = o.models.today[m] || {requests: 0, totalTokens: 0, costUSD: 0}, mo = o.models.month[m];
      return [m, ui.num(d.requests), ui.num(d.totalTokens), ui.money(d.costUSD),
              ui.num(mo.requests), ui.money(mo.costUSD)];
    }), empty);
    document.getElementById("strategy").textContent = "· " + i18n.t("strategy") + ": " + data.upstreams.strategy;
    ui.setRows(document.getElementById("upstreams-table"), data.upstreams.upstreams.map(function (u) {
      var state = !u.enabled ? i18n.t("disabled") : u.healthy ? i18n.t("healthy")
        : (u.cooldownUntil ? i18n.t("cooldown") : i18n.t("down"));
      if (u.reason) { state += " — " + u.reason; }
      if (u.configProblem) { state += " ⚠ " + u.configProblem; }
      return [u.name + " (" + u.id + ")", state, ui.num(u.inFlight), ui.num(u.requests),
              ui.pct(u.errorRate), u.p50LatencyMs === null ? "—" : u.p50LatencyMs + " ms", String(u.weight),
              String(u.priority), costPair(u.today), costPair(u.month),
              u.balanceLeftUSD === null ? "—" : ui.money(u.balanceLeftUSD) + " / " + ui.money(u.balanceUSD),
              manage.upstreamActions(u)];
    }), empty);
    ui.setRows(document.getElementById("prices-table"), data.prices.map(function (p) {
      function per(v) { return "$" + (+v.toFixed(4)); }
      return [p.model, per(p.inputPerMTok), per(p.outputPerMTok), per(p.cacheWrite5mPerMTok),
              per(p.cacheWrite1hPerMTok), per(p.cacheReadPerMTok), per(p.webSearchPer1K),
              "×" + p.fastModeMultiplier, "×" + p.batchMultiplier,
              p.source + (p.warning ? " ⚠ " + p.warning : "")];
    }), empty);
    ui.setRows(document.getElementById("batches-table"), data.batches.map(function (b) {
      var counts = b.requestCounts || {}, total = 0;
      Object.keys(counts).forEach(function (k) { total += counts[k] || 0; });
      return [b.id, b.tenant, b.status || "—", ui.num(total),
              b.estimateUSD === null || b.estimateUSD === undefined ? "—" : ui.money(b.estimateUSD),
              ui.num(b.resultsBilled || 0)];
    }), empty);
    ui.setRows(document.getElementById("requests-table"), data.requests.map(function (r) {
      // the model asked for and the one served, when an alias or a rewrite made them differ
      var model = r.requestedModel && r.requestedModel !== r.model
        ? r.requestedModel + " → " + r.model : r.model;
      return [new Date(r.timestamp).toLocaleTimeString(), r.tenantId, model,
              r.api || "anthropic", i18n.t(r.stream ? "yes" : "no"), String(r.statusCode),
              r.upstream || "—", ui.num(r.totalTokens), ui.money(r.totalCost || 0),
              (r.duration || 0) + " ms", manage.requestButton(r)];
    }), empty);
  }

  function fillFilter() {
    var select = document.getElementById("tenant-filter");
    var chosen = select.value;
    while (select.options.length > 1) { select.remove(1); }
    data.tenants.forEach(function (t) {
      var opt = document.createElement("option");
      opt.value = t.id;
      opt.textContent = t.name + " (" + t.id + ")";
      select.appendChild(opt);
    });
    select.value = chosen;
  }

  function load() {
    var tenant = document.getElementById("tenant-filter").value;
    var status = document.getElementById("status");
    return Promise.all([get("/overview"), get("/tenants"), get("/upstreams"),
                        get("/requests?limit=100" + (tenant ? "&tenant=" + encodeURIComponent(tenant) : "")),
                        get("/prices"), get("/batches")])
      .then(function (res) {
        data = {overview: res[0], tenants: res[1].tenants, upstreams: res[2], requests: res[3].requests,
                prices: res[4].prices, batches: res[5].unmetered};
        fillFilter();
        render();
        status.className = "status";
        status.textContent = i18n.t("updated") + " " + new Date().toLocaleTimeString();
      })
      .catch(function (err) {
        status.className = "status error";
        status.textContent = i18n.t("loadFailed") + " " + err.message;
      });
  }

  window.CCGateDashboard = {reload: load};

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("tenant-filter").addEventListener("change", load);
    i18n.onChange(render);
    load();
    setInterval(load, 10000);
  });
})();
