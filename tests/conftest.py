"""The whole test process runs monkey-patched, like ``python app.py``: the SDK clients' blocking
sockets yield to the servers' greenlets. Fixtures that start servers are in ``e2e/conftest.py``.
"""
# The SDKs' HTTP stack may import trio lazily, and trio needs select.epoll, which gevent's patching
# removes: import them first. Their sockets are looked up at call time, so they are still patched.
import anthropic  # noqa: F401
import openai  # noqa: F401

try:
    import trio  # noqa: F401
except ImportError:
    pass
from gevent import monkey

monkey.patch_all()
