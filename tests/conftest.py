"""The unit tests need nothing here: they import no SDK and patch nothing (``tests/unit``). The
e2e tests run monkey-patched, like ``python app.py``: ``e2e/conftest.py`` does it."""
