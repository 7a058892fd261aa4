"""The error a translation raises for a request it cannot carry over."""
from __future__ import annotations


class TranslationError(ValueError):
    """The OpenAI request cannot be expressed for Anthropic; ``param`` names the field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
