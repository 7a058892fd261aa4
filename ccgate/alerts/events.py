"""The alerts the gateway sends, built from what it saw (pure)."""
from __future__ import annotations

from ..usage.limits import usd
from .messages import Alert


def upstream_down(upstream_id: str, name: str, reason: str) -> Alert:
    return Alert("upstream_down", upstream_id,
                 f"Upstream {name} ({upstream_id}) left rotation: {reason}",
                 f"上游 {name}（{upstream_id}）已移出轮换：{reason}",
                 {"upstream": upstream_id, "reason": reason})


def upstream_recovered(upstream_id: str, name: str) -> Alert:
    return Alert("upstream_recovered", upstream_id,
                 f"Upstream {name} ({upstream_id}) is back in rotation",
                 f"上游 {name}（{upstream_id}）已恢复，重新加入轮换",
                 {"upstream": upstream_id})


def tenant_limit(tenant_id: str, name: str, limit: str, window: dict, reached: bool,
                 period_s: float) -> Alert:
    """``tenant_limit_warning`` (80 %) or ``tenant_limit_reached``: once per limit period
    (``period_s``, the time to its reset)."""
    used, most = window["usedUSD"], window["maxUSD"]
    share = f"{used / most:.0%}" if most else "100%"
    event = "tenant_limit_reached" if reached else "tenant_limit_warning"
    what = "reached" if reached else f"at {share} of"
    zh = "已达到" if reached else f"已用 {share}"
    period = "" if limit == "window5h" else window.get("resetsAt")
    return Alert(event, f"{tenant_id}:{limit}:{period}",
                 f"Tenant {name} ({tenant_id}) {what} its {limit} limit: {usd(used)} of "
                 f"{usd(most)}; resets at {window.get('resetsAt')}",
                 f"租户 {name}（{tenant_id}）{zh} {limit} 限额：{usd(used)} / {usd(most)}，"
                 f"{window.get('resetsAt')} 重置",
                 {"tenant": tenant_id, "limit": limit, **window}, dedupe_s=period_s)


def upstream_budget_low(upstream_id: str, name: str, left: float, balance: float) -> Alert:
    return Alert("upstream_budget_low", upstream_id,
                 f"Upstream {name} ({upstream_id}) has {usd(left)} of its {usd(balance)} "
                 f"prepaid balance left: top it up",
                 f"上游 {name}（{upstream_id}）预付余额仅剩 {usd(left)}（共 {usd(balance)}），请充值",
                 {"upstream": upstream_id, "balanceLeftUSD": round(left, 6),
                  "balanceUSD": balance})


def daily_summary(day: str, tenants: dict[str, float], upstreams: dict[str, float],
                  requests: int, errors: int, failovers: int) -> Alert:
    def lines(costs: dict[str, float]) -> str:
        return ", ".join(f"{k} {usd(v)}" for k, v in sorted(costs.items())) or "—"
    return Alert("daily_summary", day,
                 f"Summary of {day}: {requests} requests, {errors} errors, {failovers} failovers. "
                 f"Tenants: {lines(tenants)}. Upstreams (cost to you): {lines(upstreams)}",
                 f"{day} 汇总：{requests} 个请求，{errors} 个错误，{failovers} 次故障切换。"
                 f"租户：{lines(tenants)}。上游（实际成本）：{lines(upstreams)}",
                 {"date": day, "tenantsUSD": tenants, "upstreamsUSD": upstreams,
                  "requests": requests, "errors": errors, "failovers": failovers})


def trial_alert() -> Alert:
    return Alert("test", "test", "Test alert: this target receives CCGate's alerts",
                 "测试告警：此目标可以收到 CCGate 的告警")
