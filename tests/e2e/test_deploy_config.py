"""Issue 35: ``compose.yml`` and ``deploy/Caddyfile`` pass their own tools' checks.

Debian's ``docker-compose`` (1.29, which knows profiles) and ``caddy`` (``.ci/run`` installs
both; without them the tests are skipped, loudly). Compose runs on a copy laid out as an owner's
checkout after ``cp deploy/env.example .env``.
"""
import shutil
import subprocess

import pytest

from tests.helpers import ROOT

COMPOSE = shutil.which("docker-compose")
CADDY = shutil.which("caddy")


@pytest.fixture
def checkout(tmp_path):
    if COMPOSE is None:
        pytest.skip("!!! COMPOSE TEST SKIPPED: apt-get install docker-compose (.ci/run does) !!!")
    shutil.copy(ROOT / "compose.yml", tmp_path / "compose.yml")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / "deploy" / "env.example", tmp_path / ".env")
    return tmp_path


def compose(checkout, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([COMPOSE, "-f", "compose.yml", *args], cwd=checkout, text=True,
                          capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("profile", [None, "redis", "https"])
def test_compose_config_is_valid_for_each_profile(checkout, profile):
    chosen = ["--profile", profile] if profile else []
    done = compose(checkout, *chosen, "config", "-q")
    assert done.returncode == 0, done.stderr


def test_compose_without_env_file_says_what_to_do(checkout):
    (checkout / ".env").unlink()
    done = compose(checkout, "config", "-q")
    assert done.returncode != 0 and ".env" in done.stderr


def test_caddy_is_trusted_at_its_fixed_address(checkout):
    """The gateway believes X-Forwarded-For only from Caddy: the two addresses must agree."""
    rendered = compose(checkout, "--profile", "https", "config").stdout
    caddy_part = rendered.split("\n  caddy:\n", 1)[1].split("\n  ccgate:\n", 1)[0]
    trusted = rendered.split("CCGATE_TRUSTED_PROXIES: ", 1)[1].split()[0].strip("'\"")
    assert f"ipv4_address: {trusted}" in caddy_part


def test_caddyfile_validates(tmp_path):
    if CADDY is None:
        pytest.skip("!!! CADDY TEST SKIPPED: apt-get install caddy (.ci/run does) !!!")
    for domain in ("gateway.example.com", "http://127.0.0.1:8080"):
        done = subprocess.run([CADDY, "validate", "--config", str(ROOT / "deploy" / "Caddyfile"),
                               "--adapter", "caddyfile"], capture_output=True, text=True,
                              timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                               "XDG_DATA_HOME": str(tmp_path),
                                               "DOMAIN": domain})
        assert done.returncode == 0, done.stderr[-2000:]
