/* Operator console: the dashboard's forms and buttons that edit tenants and upstreams, and the
   request detail. Writes go to the admin API with the X-CCGate-Admin header; keys are shown once. */
"use strict";
(function () {
  var i18n = window.CCGateI18n, ui = window.CCGateUI;
  var api = document.body.getAttribute("data-api");
  var LIMITS = ui.spendWindows;
  var configured = {tenants: [], upstreams: []};
  var editing = null;  // the id being edited, or null when adding

  function send(method, path, body) {
    var init = {method: method, credentials: "same-origin", cache: "no-store",
                headers: {"X-CCGate-Admin": "1"}};
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(location.origin + api + path, init).then(function (r) {
      if (r.status === 204) { return {}; }
      return r.json().then(function (j) {
        if (!r.ok) {
          var err = new Error((j.error && j.error.message) || "HTTP " + r.status);
          err.problems = j.problems || [];
          throw err;
        }
        return j;
      });
    });
  }

  function refresh() {
    return send("GET", "/config").then(function (c) { configured = c; })
      .then(function () { if (window.CCGateDashboard) { window.CCGateDashboard.reload(); } });
  }

  function find(list, id) { return list.filter(function (x) { return x.id === id; })[0]; }

  function button(key, onClick, cls) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "small " + (cls || "secondary");
    b.textContent = i18n.t(key);
    b.addEventListener("click", onClick);
    return b;
  }

  function showError(el, err) {
    el.textContent = err.message + (err.problems && err.problems.length ? "\n" + err.problems.join("\n") : "");
    el.hidden = false;
  }

  function open(dialog) {
    dialog.querySelectorAll(".error").forEach(function (e) { e.hidden = true; });
    dialog.showModal();
  }

  function numberOrNull(input) { return input.value === "" ? null : Number(input.value); }

  function list(value) {
    return value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  // -- tenants ------------------------------------------------------------------------------------
  function rewriteText(rules) {
    return Object.keys(rules || {}).map(function (k) { return k + " = " + rules[k]; }).join("\n");
  }

  function rewriteRules(text) {
    var rules = {}, any = false;
    text.split("\n").forEach(function (line) {
      var at = line.indexOf("=");
      if (at > 0 && line.slice(at + 1).trim()) {
        rules[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        any = true;
      }
    });
    return any ? rules : null;
  }

  var RESOURCES = ["allowFiles", "allowSkills", "allowBatches"];  // owned upstream resources

  function openTenant(id) {
    var t = id ? find(configured.tenants, id) || {} : {}, f = document.getElementById("tenant-form");
    var limits = t.limits || {};
    editing = id || null;
    document.getElementById("tenant-form-title").textContent = i18n.t(id ? "c.editTenant" : "c.addTenant");
    f.elements.id.value = t.id || "";
    f.elements.id.readOnly = !!id;
    f.elements.name.value = t.name || "";
    f.elements.allowedModels.value = (t.allowedModels || []).join(", ");
    LIMITS.forEach(function (n) { f.elements[n].value = limits[n] ? limits[n].maxUSD : ""; });
    f.elements.rpm.value = limits.rpm || "";
    f.elements.concurrency.value = limits.concurrency || "";
    f.elements.cutStreams.checked = !!limits.cutStreams;
    f.elements.modelRewrite.value = rewriteText(t.modelRewrite);
    f.elements.expiresAt.value = (t.expiresAt || "").slice(0, 10);
    f.elements.enabled.checked = t.enabled !== false;
    f.elements.billingMultiplier.value = t.billingMultiplier === undefined ? "" : t.billingMultiplier;
    RESOURCES.forEach(function (n) { f.elements[n].checked = t[n] === true; });
    f.elements.allowPaths.value = (t.allowPaths || []).join(", ");
    open(document.getElementById("tenant-dialog"));
  }

  function tenantFields(f) {
    var t = editing ? find(configured.tenants, editing) || {} : {};
    var limits = JSON.parse(JSON.stringify(t.limits || {}));  // keeps fields the form lacks
    LIMITS.forEach(function (n) {
      if (f.elements[n].value === "") { delete limits[n]; } else { limits[n] = {maxUSD: Number(f.elements[n].value)}; }
    });
    ["rpm", "concurrency"].forEach(function (n) {
      if (f.elements[n].value === "" || f.elements[n].value === "0") { delete limits[n]; } else { limits[n] = Number(f.elements[n].value); }
    });
    if (f.elements.cutStreams.checked) { limits.cutStreams = true; } else { delete limits.cutStreams; }
    var models = list(f.elements.allowedModels.value);
    var fields = {
      name: f.elements.name.value.trim() || null,
      allowedModels: models.length ? models : null,
      limits: Object.keys(limits).length ? limits : null,
      modelRewrite: rewriteRules(f.elements.modelRewrite.value),
      expiresAt: f.elements.expiresAt.value || null,
      enabled: f.elements.enabled.checked,
      billingMultiplier: numberOrNull(f.elements.billingMultiplier),
      allowPaths: list(f.elements.allowPaths.value).length ? list(f.elements.allowPaths.value) : null
    };
    RESOURCES.forEach(function (n) { fields[n] = f.elements[n].checked ? true : null; });
    if (!editing) {
      fields.id = f.elements.id.value.trim();
      Object.keys(fields).forEach(function (k) { if (fields[k] === null) { delete fields[k]; } });
    }
    return fields;
  }

  function showKey(key) {
    var base = location.origin + "/anthropic";
    document.getElementById("new-key").value = key;
    document.getElementById("key-snippet").textContent =
      "export ANTHROPIC_BASE_URL=" + base + "\nexport ANTHROPIC_AUTH_TOKEN=" + key + "\nclaude";
    document.getElementById("key-settings").textContent = JSON.stringify(
      {env: {ANTHROPIC_BASE_URL: base, ANTHROPIC_AUTH_TOKEN: key}}, null, 2);
    open(document.getElementById("key-dialog"));
  }

  function saveTenant(event) {
    event.preventDefault();
    var f = event.target, fields = tenantFields(f), err = document.getElementById("tenant-error");
    var done = editing ? send("PATCH", "/tenants/" + encodeURIComponent(editing), fields)
                       : send("POST", "/tenants", fields);
    done.then(function (r) {
      document.getElementById("tenant-dialog").close();
      if (r.key) { showKey(r.key); }
      return refresh();
    }).catch(function (e) { showError(err, e); });
  }

  function tenantActions(t) {
    var box = document.createElement("span");
    box.className = "buttons";
    if (!t.configured) { return box; }
    box.appendChild(button("c.edit", function () { openTenant(t.id); }));
    box.appendChild(button(t.enabled ? "c.disable" : "c.enable", function () {
      send("PATCH", "/tenants/" + encodeURIComponent(t.id), {enabled: !t.enabled}).then(refresh);
    }));
    box.appendChild(button("c.rotate", function () {
      if (!confirm(i18n.t("c.confirmRotate").replace("%s", t.name))) { return; }
      send("POST", "/tenants/" + encodeURIComponent(t.id) + "/rotate-key").then(function (r) {
        showKey(r.key);
        return refresh();
      });
    }));
    box.appendChild(button("c.delete", function () {
      if (!confirm(i18n.t("c.confirmDelete").replace("%s", t.name))) { return; }
      send("DELETE", "/tenants/" + encodeURIComponent(t.id)).then(refresh);
    }, "danger"));
    return box;
  }

  // -- upstreams ----------------------------------------------------------------------------------
  function openUpstream(id) {
    var u = id ? find(configured.upstreams, id) || {} : {}, f = document.getElementById("upstream-form");
    editing = id || null;
    document.getElementById("upstream-form-title").textContent = i18n.t(id ? "c.editUpstream" : "c.addUpstream");
    f.elements.id.value = u.id || "";
    f.elements.id.readOnly = !!id;
    f.elements.name.value = u.name || "";
    f.elements.url.value = u.url || "";
    f.elements.key.value = "";
    f.elements.key.placeholder = id ? i18n.t("c.keyKept") + " (" + (u.key || "") + ")" : "sk-…";
    f.elements.weight.value = u.weight === undefined ? 1 : u.weight;
    f.elements.auth.value = u.auth || "auto";
    f.elements.timeout.value = u.timeout || "";
    f.elements.models.value = (u.models || []).join(", ");
    f.elements.enabled.checked = u.enabled !== false;
    var limits = u.limits || {};
    f.elements.priceMultiplier.value = u.priceMultiplier === undefined ? "" : u.priceMultiplier;
    f.elements.priority.value = u.priority === undefined ? "" : u.priority;
    f.elements.dailyLimit.value = limits.daily ? limits.daily.maxUSD : "";
    f.elements.monthlyLimit.value = limits.monthly ? limits.monthly.maxUSD : "";
    f.elements.balanceUSD.value = "";
    f.elements.balanceUSD.placeholder = u.balanceUSD === undefined ? "USD" : i18n.t("e.balanceKept");
    document.getElementById("upstream-test-result").textContent = "";
    open(document.getElementById("upstream-dialog"));
  }

  function upstreamFields(f) {
    var models = list(f.elements.models.value), fields = {
      name: f.elements.name.value.trim() || null, url: f.elements.url.value.trim(),
      weight: Number(f.elements.weight.value || 1), auth: f.elements.auth.value,
      timeout: f.elements.timeout.value ? Number(f.elements.timeout.value) : null,
      models: models.length ? models : null, enabled: f.elements.enabled.checked
    };
    if (f.elements.key.value) { fields.key = f.elements.key.value; }
    var u = editing ? find(configured.upstreams, editing) || {} : {};
    var limits = JSON.parse(JSON.stringify(u.limits || {}));
    [["daily", "dailyLimit"], ["monthly", "monthlyLimit"]].forEach(function (p) {
      if (f.elements[p[1]].value === "") { delete limits[p[0]]; } else { limits[p[0]] = {maxUSD: Number(f.elements[p[1]].value)}; }
    });
    fields.limits = Object.keys(limits).length ? limits : null;
    fields.priceMultiplier = numberOrNull(f.elements.priceMultiplier);
    fields.priority = numberOrNull(f.elements.priority);
    if (f.elements.balanceUSD.value !== "") { fields.balanceUSD = Number(f.elements.balanceUSD.value); }
    if (!editing) {
      fields.id = f.elements.id.value.trim();
      Object.keys(fields).forEach(function (k) { if (fields[k] === null) { delete fields[k]; } });
    }
    return fields;
  }

  function testText(r) {
    return (r.ok ? "✓ " + i18n.t("c.testOk") : "✗ " + (r.reason || i18n.t("c.testFailed"))) +
      " · " + r.model + (r.latencyMs !== null ? " · " + r.latencyMs + " ms" : "");
  }

  function testUpstream(id, out) {
    out.textContent = i18n.t("c.testing");
    return send("POST", "/upstreams/" + encodeURIComponent(id) + "/test", {})
      .then(function (r) { out.textContent = testText(r); })
      .catch(function (e) { out.textContent = "✗ " + e.message; });
  }

  function testForm() {
    var f = document.getElementById("upstream-form"), out = document.getElementById("upstream-test-result");
    if (editing && !f.elements.key.value) { return testUpstream(editing, out); }
    var fields = upstreamFields(f);
    out.textContent = i18n.t("c.testing");
    send("POST", "/upstreams/test", {url: fields.url, key: fields.key || "", auth: fields.auth,
                                     models: fields.models || undefined})
      .then(function (r) { out.textContent = testText(r); })
      .catch(function (e) { out.textContent = "✗ " + e.message + " " + (e.problems || []).join(" "); });
  }

  function saveUpstream(event) {
    event.preventDefault();
    var fields = upstreamFields(event.target), err = document.getElementById("upstream-error");
    var done = editing ? send("PATCH", "/upstreams/" + encodeURIComponent(editing), fields)
                       : send("POST", "/upstreams", fields);
    done.then(function () {
      document.getElementById("upstream-dialog").close();
      return refresh();
    }).catch(function (e) { showError(err, e); });
  }

  function upstreamActions(u) {
    var box = document.createElement("span"), out = document.createElement("span");
    box.className = "buttons";
    out.className = "test-result";
    box.appendChild(button("c.edit", function () { openUpstream(u.id); }));
    box.appendChild(button("c.test", function () { testUpstream(u.id, out); }));
    box.appendChild(button(u.enabled ? "c.disable" : "c.enable", function () {
      send("PATCH", "/upstreams/" + encodeURIComponent(u.id), {enabled: !u.enabled}).then(refresh);
    }));
    box.appendChild(button("c.delete", function () {
      if (!confirm(i18n.t("c.confirmDelete").replace("%s", u.name))) { return; }
      send("DELETE", "/upstreams/" + encodeURIComponent(u.id)).then(refresh);
    }, "danger"));
    box.appendChild(out);
    return box;
  }

  // -- request detail -----------------------------------------------------------------------------
  function showRequest(id, tenant) {
    send("GET", "/requests/" + encodeURIComponent(id) + "?tenant=" + encodeURIComponent(tenant)).then(function (r) {
      var dash = "—";
      ui.setList(document.getElementById("request-detail"), [
        ["time", new Date(r.timestamp).toLocaleString()], ["tenant", r.tenantId],
        ["c.requestedModel", r.requestedModel || r.model], ["c.servedModel", r.model],
        ["upstream", r.upstream || dash], ["status", r.statusCode + (r.errorType ? " " + r.errorType : "")],
        ["c.ttfb", r.ttfbMs === null || r.ttfbMs === undefined ? dash : r.ttfbMs + " ms"],
        ["duration", r.duration + " ms"], ["c.input", ui.num(r.inputTokens)],
        ["c.output", ui.num(r.outputTokens)], ["c.cacheWrite", ui.num(r.cacheCreationTokens)],
        ["c.cacheRead", ui.num(r.cacheReadTokens)], ["cost", ui.money(r.totalCost || 0)]]
        .concat(r.interrupted ? [["c.interrupted", r.interrupted]] : []));
      ui.setRows(document.getElementById("attempts-table"), (r.attempts || []).map(function (a) {
        return [a.upstream, a.status === undefined ? dash : String(a.status), a.error || "", String(a.ms)];
      }), i18n.t("none"));
      open(document.getElementById("request-dialog"));
    }).catch(function (e) { alert(e.message); });
  }

  function requestButton(r) {
    return button("c.detail", function () { showRequest(r.requestId, r.tenantId); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("add-tenant").addEventListener("click", function () { openTenant(null); });
    document.getElementById("add-upstream").addEventListener("click", function () { openUpstream(null); });
    document.getElementById("tenant-form").addEventListener("submit", saveTenant);
    document.getElementById("upstream-form").addEventListener("submit", saveUpstream);
    document.getElementById("upstream-form-test").addEventListener("click", testForm);
    document.getElementById("copy-key").addEventListener("click", function () {
      var input = document.getElementById("new-key");
      input.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(input.value).catch(function () {}); }
    });
    document.querySelectorAll("dialog [data-close]").forEach(function (b) {
      b.addEventListener("click", function () { b.closest("dialog").close(); });
    });
    refresh();
  });

  window.CCGateConsole = {tenantActions: tenantActions, upstreamActions: upstreamActions,
                          requestButton: requestButton};
})();
