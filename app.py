"""Start the CCGate server: ``python app.py`` (see ``python app.py --help``)."""
from gevent import monkey

monkey.patch_all()  # before anything imports socket, ssl or threading

import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402
import gevent  # noqa: E402
from flask import Flask  # noqa: E402

import ccgate  # noqa: E402
from ccgate.config.first_run import first_run  # noqa: E402
from ccgate.cli import cli as ccgate_cli  # noqa: E402
from ccgate.config.load import ConfigError  # noqa: E402
from ccgate.http.server import make_server  # noqa: E402

log = logging.getLogger("ccgate")
RESERVED_DESCRIPTORS = 128  # log files, Redis, listening socket, health probes, alerts


def connection_budget(configured: int) -> int:
    """``server.maxConnections``, or by default what the descriptor limit allows: the soft limit
    is raised to the hard one, and each client connection may need an upstream one too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if configured:
        return configured
    return max(64, (min(soft, 1 << 20) - RESERVED_DESCRIPTORS) // 2)


def _supervised(config_dir: str, data_dir: str, host: str | None, port: int | None,
                workers: str | None) -> int | None:
    """With more than one worker, run the supervisor and return its exit status; else None."""
    from ccgate.config.load import load_config
    from ccgate.http.workers import supervise, worker_count
    try:
        config = load_config(config_dir)
        count = worker_count(workers if workers is not None else config.workers)
    except (ConfigError, ValueError):
        return None  # the single process says what is wrong, as it always has
    if count == 1:
        return None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    argv = [sys.executable, os.path.abspath(__file__), "--config-dir", config_dir,
            "--data-dir", data_dir, "--host", host or config.host,
            "--port", str(port or config.port)]
    return supervise(count, host or config.host, port or config.port, argv,
                     config.shutdown_grace_s)


def create_app() -> Flask:
    """For ``flask --app app …`` (and Flask's auto-discovery of app.py).

    With a broken config it still returns an app carrying the ``ccgate`` commands, so that
    ``flask ccgate validate`` can say what is wrong instead of failing to load.
    """
    try:
        return ccgate.create_app()
    except ConfigError:
        app = Flask("ccgate-cli")
        app.cli.add_command(ccgate_cli, "ccgate")
        return app


def shutdown(server, gateway, grace_s: float) -> None:
    """Stop accepting, let in-flight requests and streams finish (up to ``grace_s``), stop."""
    log.info("shutting down: waiting up to %.0f s for %d request(s) in flight", grace_s,
             gateway.in_flight)
    # Stop accepting and close the listener, but leave the server running: closing it through
    # gevent would end every open connection after a second, streams included.
    server.stop_accepting()
    server.socket.close()
    deadline = time.monotonic() + grace_s
    while gateway.in_flight > 0 and time.monotonic() < deadline:
        gevent.sleep(0.05)
    server.stop(timeout=1)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config-dir", envvar="CCGATE_CONFIG_DIR", default="config", show_default=True,
              type=click.Path(file_okay=False), help="Directory with server/upstreams/tenants.json.")
@click.option("--data-dir", envvar="CCGATE_DATA_DIR", default="data", show_default=True,
              type=click.Path(file_okay=False), help="Directory for usage records and logs.")
@click.option("--host", envvar="HOST", default=None, help="Listen address (overrides server.host).")
@click.option("--port", envvar="PORT", default=None, type=int,
              help="Listen port (overrides server.port).")
@click.option("--reload", "dev_reload", is_flag=True,
              help="Development: restart when code, templates or static files change.")
@click.option("--workers", envvar="CCGATE_SERVE_WORKERS", default=None,
              help="Processes serving the port: a number, or auto (one per core); overrides "
                   "server.workers.")
@click.option("--listen-fd", type=int, default=None, hidden=True,
              help="A worker's inherited listening socket (set by the supervisor).")
def main(config_dir: str, data_dir: str, host: str | None, port: int | None,
         dev_reload: bool, workers: str | None, listen_fd: int | None) -> None:
    """Run the CCGate gateway."""
    if dev_reload:
        from ccgate.cli.devreload import run_with_reloader
        sys.exit(run_with_reloader([a for a in sys.argv if a != "--reload"]))
    if listen_fd is None:
        message = first_run(Path(config_dir), port=port)
        if message:
            print(message, flush=True)
        supervised = _supervised(config_dir, data_dir, host, port, workers)
        if supervised is not None:
            sys.exit(supervised)
    try:
        app = ccgate.create_app(config_dir, data_dir)
    except ConfigError as e:
        for line in e.lines:
            click.echo(line, err=True)
        click.echo(f"CCGate not started: {len(e.lines)} config problem(s) in {config_dir}", err=True)
        sys.exit(1)
    gateway = app.extensions["ccgate"]
    config = gateway.config
    # What start-up allocated lives as long as the process: frozen, full collections skip it
    # (a pause of hundreds of ms with many streams open otherwise).
    gc.collect()
    gc.freeze()
    # The default (700, 10, 10) costs 6-12 % more CPU: a middle generation collected every 7,000
    # allocations keeps re-reading what requests in flight hold. Here it is collected every
    # 400,000 (10,000 x 40). The young generation stays small: a young collection reads every
    # object in it, and with 500 streams open most of them are alive; at 20,000 each paused all
    # streams for 5-17 ms, at 10,000 for at most 4.4 (measured with gc.callbacks; at 100,000 the
    # one collection after a burst of 500 stream setups paused them for 60-80 ms).
    gc.set_threshold(10_000, 40, 20)
    for warning in config.warnings + config.problems:
        log.warning("%s", warning)
    host = host or config.host
    port = port or config.port
    listener = None if listen_fd is None else socket.socket(fileno=listen_fd)
    server = make_server(app, host, port, max_connections=connection_budget(config.max_connections),
                         listener=listener)
    try:
        server.init_socket()
    except OSError as e:
        gateway.close()
        click.echo(f"CCGate not started: cannot listen on {host}:{port}: {e.strerror} "
                   f"(another process has the port? try --port)", err=True)
        sys.exit(1)
    def drain() -> None:
        gevent.spawn(shutdown, server, gateway, gateway.config.shutdown_grace_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, drain)
    if listen_fd is not None:
        from ccgate.http.workers import watch_supervisor
        watch_supervisor(drain)
    gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(gateway.watcher.check, True))
    log.info("CCGate %s listening on http://%s:%d (pid %d, at most %d connections)",
             ccgate.__version__, host, port, os.getpid(), server.max_connections)
    server.serve_forever()
    gateway.close()  # flushes logs and closes the usage files
    sys.exit(0)


if __name__ == "__main__":
    main()
