"""``/dashboard`` (admin, basic auth) and ``/dashboard/me`` (a tenant's own page)."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from ..core.errors import GatewayError
from ..config.settings import AdminConfig
from .request import current_gateway
from .admin_auth import auth

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def language() -> str:
    """``zh`` when the browser prefers Chinese, else ``en`` (the page has a toggle too)."""
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-TW"], default="en")
    return "zh" if best.startswith("zh") else "en"


@bp.after_request
def security_headers(response):
    response.headers["content-security-policy"] = CSP
    response.headers["x-frame-options"] = "DENY"
    response.headers["referrer-policy"] = "same-origin"  # the console's writes carry their origin
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["cache-control"] = "no-store"
    return response


@auth.login_required
def _admin_page(admin: AdminConfig):
    return render_template("dashboard.html", lang=language(),
                           api_base=admin.path + "/api")


@bp.get("")
@bp.get("/")
def admin_page():
    admin = current_gateway().config.admin
    if not admin.enabled:
        raise GatewayError(404, "the admin dashboard is turned off")
    return _admin_page(admin)


@bp.get("/me")
def tenant_page():
    return render_template("me.html", lang=language())
