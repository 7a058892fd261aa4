"""Start the CCGate server: ``python app.py`` (see ``python app.py --help``)."""
from gevent import monkey

monkey.patch_all()  # before anything imports socket, ssl or threading

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import click  # noqa: E402

from ccgate import create_app  # noqa: E402
from ccgate.bootstrap import first_run  # noqa: E402
from ccgate.config import ConfigError  # noqa: E402
from ccgate.server import make_server  # noqa: E402


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config-dir", envvar="CCGATE_CONFIG_DIR", default="config", show_default=True,
              type=click.Path(file_okay=False), help="Directory with server/upstreams/tenants.json.")
@click.option("--data-dir", envvar="CCGATE_DATA_DIR", default="data", show_default=True,
              type=click.Path(file_okay=False), help="Directory for usage records and logs.")
@click.option("--host", envvar="HOST", default=None, help="Listen address (overrides server.host).")
@click.option("--port", envvar="PORT", default=None, type=int,
              help="Listen port (overrides server.port).")
def main(config_dir: str, data_dir: str, host: str | None, port: int | None) -> None:
    """Run the CCGate gateway."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    message = first_run(Path(config_dir))
    if message:
        print(message, flush=True)
    try:
        app = create_app(config_dir, data_dir)
    except ConfigError as e:
        for line in e.lines:
            click.echo(line, err=True)
        click.echo(f"CCGate not started: {len(e.lines)} config problem(s) in {config_dir}", err=True)
        sys.exit(1)
    config = app.extensions["ccgate"].config
    for warning in config.warnings:
        logging.getLogger("ccgate").warning("%s", warning)
    host = host or config.host
    port = port or config.port
    server = make_server(app, host, port)
    try:
        server.init_socket()
    except OSError as e:
        click.echo(f"CCGate not started: cannot listen on {host}:{port}: {e.strerror}", err=True)
        sys.exit(1)
    logging.getLogger("ccgate").info("CCGate listening on http://%s:%d (pid %d)", host, port, os.getpid())
    server.serve_forever()


if __name__ == "__main__":
    main()
