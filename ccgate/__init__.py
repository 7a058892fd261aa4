"""CCGate: a self-hosted gateway that shares Claude API access among tenants."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from flask import Flask

from .config.load import ConfigError, load_config
from .config.settings import SPEND_WINDOWS
from .core.version import VERSION
from .gateway import Gateway
from .ops.logs import setup_logging
from .proxy import response_head

__version__ = VERSION


class GatewayFlask(Flask):
    """Flask, less one per-hook cost: every view and hook here is synchronous, so
    ``ensure_sync`` (``inspect.iscoroutinefunction`` on each hook of each request) is not needed."""

    def ensure_sync(self, func):
        return func


def create_app(config_dir: str | os.PathLike | None = None,
               data_dir: str | os.PathLike | None = None) -> Flask:
    """Application factory: load and validate the config, build the gateway, register blueprints.

    ``config_dir`` defaults to ``$CCGATE_CONFIG_DIR`` or ``./config``; ``data_dir`` to
    ``$CCGATE_DATA_DIR`` or ``./data``. Raises ``ConfigError`` when the config is not usable.
    """
    config_dir = Path(config_dir or os.environ.get("CCGATE_CONFIG_DIR") or "config")
    data_dir = Path(data_dir or os.environ.get("CCGATE_DATA_DIR") or "data")
    try:
        config = load_config(config_dir)
    except ConfigError as e:
        if "gunicorn" in sys.modules:
            # gunicorn prints a traceback for any exception while loading the app, but not for
            # SystemExit: say what is wrong in plain lines and stop.
            for line in e.lines:
                print(line, file=sys.stderr)
            print(f"CCGate not started: {len(e.lines)} config problem(s) in "
                  f"{config_dir.resolve()}", file=sys.stderr, flush=True)
            raise SystemExit(4) from None  # gunicorn: "App failed to load", the master stops
        raise

    response_head.install()  # upstream answer heads without the email package (process-wide)
    app = GatewayFlask(__name__, template_folder="../templates", static_folder="../static")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.url_map.merge_slashes = False  # "//" in a path is refused, not redirected
    app.jinja_env.globals["spend_windows"] = json.dumps(SPEND_WINDOWS)
    setup_logging(config.logging, data_dir)
    gateway = Gateway(config, data_dir)
    app.extensions["ccgate"] = gateway

    from .api import admin, anthropic, dashboard, health, metrics, openai, usage
    from .api.errors import register_error_handlers
    from .api.hooks import register_request_hooks
    register_error_handlers(app)
    register_request_hooks(app)
    app.register_blueprint(admin.bp, url_prefix=config.admin.path)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(anthropic.bp)
    app.register_blueprint(openai.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(usage.bp)
    app.register_blueprint(metrics.bp)
    from .cli import cli
    app.cli.add_command(cli, "ccgate")
    gateway.start()
    return app
