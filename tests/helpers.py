"""What every test module may share: keys, paths, config files. Imports nothing that opens a socket
(the running servers are in ``tests/e2e/servers.py``)."""
import json
from pathlib import Path

TENANT_KEY = "sk-ccg-test-tenant-key-0123456789"
OTHER_KEY = "sk-ccg-test-other-key-9876543210"
DISABLED_KEY = "sk-ccg-test-disabled-key-000000"
UPSTREAM_KEY = "sk-ant-upstream-secret-key-abcdef"
ROOT = Path(__file__).resolve().parent.parent  # the repository
FIXTURES = Path(__file__).parent / "fixtures"


def write_config(config_dir: Path, upstreams: list[dict], *, tenants: list[dict] | None = None,
                 server: dict | None = None, load_balancer: dict | None = None,
                 pricing: dict | None = None) -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    if tenants is None:
        tenants = [
            {"id": "alice", "name": "Alice", "key": TENANT_KEY, "allowedModels": ["*"]},
            {"id": "bob", "name": "Bob", "key": OTHER_KEY, "allowedModels": ["*haiku*"]},
            {"id": "carol", "name": "Carol", "key": DISABLED_KEY, "enabled": False},
        ]
    (config_dir / "server.json").write_text(json.dumps(server or {"server": {"port": 3000}}))
    (config_dir / "upstreams.json").write_text(json.dumps(
        {"upstreams": upstreams,
         "loadBalancer": {"strategy": "round_robin", "healthCheckEnabled": False,
                          **(load_balancer or {})}}))
    (config_dir / "tenants.json").write_text(json.dumps({"tenants": tenants}))
    if pricing is not None:
        (config_dir / "pricing.json").write_text(json.dumps(pricing))
    return config_dir


def upstream_entry(mock, uid: str | None = None, **extra) -> dict:
    """The upstreams.json entry for a running mock upstream (its ``name`` and ``url``)."""
    return {"id": uid or mock.name, "name": mock.name, "url": mock.url, "key": UPSTREAM_KEY, **extra}


