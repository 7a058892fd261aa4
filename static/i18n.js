/* CCGate dashboard: English / 简体中文 text and the language toggle. No data, no secrets. */
"use strict";
(function () {
  var TEXT = {
    en: {
      "dashboard.title": "CCGate dashboard", "me.title": "My CCGate usage",
      totals: "Totals", today: "Today", month: "This month", requests: "Requests", errors: "Errors",
      tokens: "Tokens", cacheHitRate: "Cache hit rate", cost: "Cost",
      costChart: "Cost per day, last 30 days", tenants: "Tenants", tenant: "Tenant",
      requestsToday: "Requests today", tokensToday: "Tokens today", costToday: "Cost today",
      requestsMonth: "Requests this month", costMonth: "Cost this month", dailyLimit: "Daily limit used",
      state: "State", enabled: "enabled", disabled: "disabled", expired: "expired", models: "Allowed models",
      byModel: "By model", model: "Model", upstreams: "Upstreams", upstream: "Upstream",
      health: "Health", healthy: "healthy", cooldown: "cooling down", down: "down",
      inFlight: "In flight", errorRate: "Error rate", p50: "p50 latency", weight: "Weight",
      recent: "Last 100 requests", filterTenant: "Tenant:", allTenants: "all", time: "Time",
      api: "API", stream: "Stream", status: "Status", duration: "Duration", yes: "yes", no: "no",
      noLimit: "no limit", updated: "Updated", loadFailed: "Could not load data:", none: "nothing yet",
      strategy: "strategy",
      "me.keyLabel": "Your CCGate API key", "me.show": "Show my usage", "me.forget": "Forget key",
      "me.keyHint": "The key stays in this browser tab only (sessionStorage) and is sent only to this gateway.",
      "me.badKey": "This key was not accepted. Check it and try again.",
      "me.budget": "Daily budget", "me.remaining": "Remaining", "me.used": "Used", "me.limit": "Limit",
      "me.resets": "Resets at", "me.chart": "My cost per day, last 30 days", "me.monthly": "Monthly",
      "me.weekly": "This week", "me.window5h": "Last 5 hours"
    },
    zh: {
      "dashboard.title": "CCGate 控制台", "me.title": "我的 CCGate 用量",
      totals: "汇总", today: "今天", month: "本月", requests: "请求数", errors: "错误",
      tokens: "Tokens", cacheHitRate: "缓存命中率", cost: "费用",
      costChart: "近 30 天每日费用", tenants: "租户", tenant: "租户",
      requestsToday: "今日请求", tokensToday: "今日 Tokens", costToday: "今日费用",
      requestsMonth: "本月请求", costMonth: "本月费用", dailyLimit: "日限额已用",
      state: "状态", enabled: "启用", disabled: "停用", expired: "已过期", models: "允许的模型",
      byModel: "按模型", model: "模型", upstreams: "上游", upstream: "上游",
      health: "健康", healthy: "正常", cooldown: "冷却中", down: "不可用",
      inFlight: "进行中", errorRate: "错误率", p50: "p50 延迟", weight: "权重",
      recent: "最近 100 个请求", filterTenant: "租户：", allTenants: "全部", time: "时间",
      api: "接口", stream: "流式", status: "状态码", duration: "耗时", yes: "是", no: "否",
      noLimit: "无限额", updated: "更新于", loadFailed: "数据加载失败：", none: "暂无数据",
      strategy: "策略",
      "me.keyLabel": "你的 CCGate API 密钥", "me.show": "查看用量", "me.forget": "清除密钥",
      "me.keyHint": "密钥只保存在当前浏览器标签页（sessionStorage），只发送给本网关。",
      "me.badKey": "密钥无效，请检查后重试。",
      "me.budget": "每日预算", "me.remaining": "剩余", "me.used": "已用", "me.limit": "限额",
      "me.resets": "重置时间", "me.chart": "近 30 天我的每日费用", "me.monthly": "每月",
      "me.weekly": "本周", "me.window5h": "最近 5 小时"
    }
  };
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem("ccgate-lang"); } catch (e) { /* storage off */ }
  var lang = saved === "zh" || saved === "en" ? saved : root.getAttribute("data-lang") || "en";
  var listeners = [];

  function t(key) { return (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key; }

  function apply() {
    root.setAttribute("lang", lang === "zh" ? "zh-CN" : "en");
    root.setAttribute("data-lang", lang);
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    var toggle = document.getElementById("lang-toggle");
    if (toggle) { toggle.textContent = lang === "zh" ? "English" : "中文"; }
    var h1 = document.querySelector("h1[data-i18n]");
    if (h1) { document.title = h1.textContent; }
    listeners.forEach(function (fn) { fn(lang); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("lang-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        lang = lang === "zh" ? "en" : "zh";
        try { localStorage.setItem("ccgate-lang", lang); } catch (e) { /* storage off */ }
        apply();
      });
    }
    apply();
  });

  window.CCGateI18n = {
    t: t,
    lang: function () { return lang; },
    onChange: function (fn) { listeners.push(fn); }
  };
})();
