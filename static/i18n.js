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
      "me.weekly": "This week", "me.window5h": "Last 5 hours",
      "c.addTenant": "Add tenant", "c.editTenant": "Edit tenant", "c.addUpstream": "Add upstream",
      "c.editUpstream": "Edit upstream", "c.actions": "Actions", "c.detail": "Details", "c.id": "Id (letters, digits, _ . -)",
      "c.name": "Name", "c.allowedModels": "Allowed models (comma-separated wildcards; empty = all)",
      "c.limits": "Limits (empty = none)", "c.daily": "Daily", "c.rpm": "Requests per minute",
      "c.concurrency": "Concurrent requests", "c.cutStreams": "End running streams at the limit",
      "c.resources": "Upstream resources (owned by this tenant)", "c.allowFiles": "Files API",
      "c.allowSkills": "Skills", "c.allowBatches": "Message Batches (not metered)",
      "c.allowPaths": "More paths (risk: shared by every key; comma-separated)",
      "c.rewrite": "Model rewrite (one per line: pattern = model)", "c.expires": "Key expires after",
      "c.save": "Save", "c.cancel": "Cancel", "c.close": "Close", "c.done": "Done", "c.copy": "Copy",
      "c.newKey": "The new key", "c.keyOnce": "Copy it now: it is shown only this once (only its hash is stored).",
      "c.snippet": "Claude Code: paste into the shell…",
      "c.settingsSnippet": "…or into ~/.claude/settings.json (merge with what is there):",
      "c.url": "Base URL (without /v1)", "c.key": "API key", "c.keyKept": "leave empty to keep", "c.auth": "Auth header",
      "c.timeout": "Timeout (ms)", "c.upstreamModels": "Models it serves (comma-separated; empty = all)",
      "c.test": "Test", "c.testing": "Testing…", "c.testOk": "answered", "c.testFailed": "failed",
      "c.edit": "Edit", "c.enable": "Enable", "c.disable": "Disable", "c.rotate": "New key", "c.delete": "Delete",
      "c.confirmRotate": "Give %s a new key? The old one stops working at once.",
      "c.confirmDelete": "Delete %s? Its usage history stays.", "c.requestDetail": "Request",
      "c.attempts": "Upstreams tried", "c.why": "Why it failed over", "c.requestedModel": "Model requested",
      "c.servedModel": "Model served", "c.ttfb": "Time to first byte", "c.input": "Input tokens",
      "c.output": "Output tokens", "c.cacheWrite": "Cache write tokens", "c.cacheRead": "Cache read tokens",
      "c.interrupted": "Interrupted",
      "e.priority": "Priority", "e.today": "Today: requests · tokens · list → cost to you",
      "e.month": "Month: requests · tokens · list → cost to you", "e.balance": "Balance left",
      "e.prices": "Prices per million tokens (models seen in the last 30 days)", "e.input": "Input",
      "e.output": "Output", "e.write5m": "Cache write 5 m", "e.write1h": "Cache write 1 h",
      "e.read": "Cache read", "e.source": "Source", "e.search": "Web search / 1K",
      "e.fast": "Fast mode", "e.batch": "Batch",
      "e.unmetered": "Batches not billed yet", "e.batchId": "Batch", "e.estimate": "Worst case",
      "e.billedLines": "Results billed",
      "e.unmeteredHint": "Anthropic bills a batch when it runs; the gateway bills the tenant when its results are downloaded through it. These batches' results never were, completely.",
      "e.pricesHint": "⚠ marks a model priced by a fallback rule: add it to pricing.json to charge its real price.",
      "e.billing": "Billing multiplier (× list price; empty = 1)", "e.list": "list",
      "e.money": "Cost and budget", "e.multiplier": "Price multiplier (× list price)",
      "e.setBalance": "Set prepaid balance (top-up)", "e.balanceKept": "leave empty to keep"
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
      "me.weekly": "本周", "me.window5h": "最近 5 小时",
      "c.addTenant": "添加租户", "c.editTenant": "编辑租户", "c.addUpstream": "添加上游",
      "c.editUpstream": "编辑上游", "c.actions": "操作", "c.detail": "详情", "c.id": "ID（字母、数字、_ . -）",
      "c.name": "名称", "c.allowedModels": "允许的模型（逗号分隔的通配符，留空为全部）",
      "c.limits": "限额（留空为不限）", "c.daily": "每日", "c.rpm": "每分钟请求数",
      "c.concurrency": "并发请求数", "c.cutStreams": "达到限额时结束进行中的流",
      "c.resources": "上游资源（归属本租户）", "c.allowFiles": "Files API（文件）",
      "c.allowSkills": "Skills（技能）", "c.allowBatches": "消息批处理（不计量）",
      "c.allowPaths": "额外路径（风险：账号下所有密钥共享；逗号分隔）",
      "c.rewrite": "模型改写（每行一条：通配符 = 模型）", "c.expires": "密钥有效期至",
      "c.save": "保存", "c.cancel": "取消", "c.close": "关闭", "c.done": "完成", "c.copy": "复制",
      "c.newKey": "新密钥", "c.keyOnce": "请立即复制：密钥只显示这一次（只保存其哈希）。",
      "c.snippet": "Claude Code：粘贴到终端……",
      "c.settingsSnippet": "……或写入 ~/.claude/settings.json（与已有内容合并）：",
      "c.url": "基础 URL（不含 /v1）", "c.key": "API 密钥", "c.keyKept": "留空则保持不变", "c.auth": "认证头",
      "c.timeout": "超时（毫秒）", "c.upstreamModels": "提供的模型（逗号分隔，留空为全部）",
      "c.test": "测试", "c.testing": "测试中…", "c.testOk": "已应答", "c.testFailed": "失败",
      "c.edit": "编辑", "c.enable": "启用", "c.disable": "停用", "c.rotate": "换新密钥", "c.delete": "删除",
      "c.confirmRotate": "给 %s 换新密钥？旧密钥立即失效。",
      "c.confirmDelete": "删除 %s？用量记录会保留。", "c.requestDetail": "请求详情",
      "c.attempts": "尝试过的上游", "c.why": "切换原因", "c.requestedModel": "请求的模型",
      "c.servedModel": "实际模型", "c.ttfb": "首字节时间", "c.input": "输入 Tokens",
      "c.output": "输出 Tokens", "c.cacheWrite": "缓存写入 Tokens", "c.cacheRead": "缓存读取 Tokens",
      "c.interrupted": "中断",
      "e.priority": "优先级", "e.today": "今日：请求 · tokens · 标价 → 实际成本",
      "e.month": "本月：请求 · tokens · 标价 → 实际成本", "e.balance": "剩余余额",
      "e.prices": "每百万 tokens 价格（近 30 天出现过的模型）", "e.input": "输入",
      "e.output": "输出", "e.write5m": "缓存写入 5 分钟", "e.write1h": "缓存写入 1 小时",
      "e.read": "缓存读取", "e.source": "来源", "e.search": "网页搜索 / 千次",
      "e.fast": "快速模式", "e.batch": "批处理",
      "e.unmetered": "尚未计费的批处理", "e.batchId": "批处理", "e.estimate": "最坏成本",
      "e.billedLines": "已计费结果",
      "e.unmeteredHint": "Anthropic 在批处理运行时向你收费；网关在租户经网关下载结果时向租户计费。这些批处理的结果尚未完整经网关下载。",
      "e.pricesHint": "⚠ 表示该模型按兜底规则计价：请在 pricing.json 中添加它的真实价格。",
      "e.billing": "计费倍率（× 标价，留空为 1）", "e.list": "标价",
      "e.money": "成本与预算", "e.multiplier": "价格倍率（× 标价）",
      "e.setBalance": "设置预付余额（充值）", "e.balanceKept": "留空则保持不变"
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
