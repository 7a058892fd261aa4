"""Which upstream endpoints a tenant may reach, and what each one is, in one table (pure).

Tenants share the upstream organisation: everything created there (files, skills, batches) is
visible to every key of it. So only what the gateway understands passes:

- inference (``/v1/messages``, ``count_tokens``, ``/v1/complete``) and the model list;
- stateful resources (files, skills, message batches), each behind its tenant setting
  (``allowFiles``, ``allowSkills``, ``allowBatches``) and owned: the gateway records which tenant
  (and which upstream) created each id, answers lists itself, and refuses another tenant's id
  with 404 before anything is sent;
- nothing else (``/v1/organizations/*`` included): 404, unless the operator opens a path
  pattern for a tenant with ``allowPaths``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# kind: inference (meters tokens), free (costs nothing), create, list, item (an owned id's
# follow-up), delete (an owned id's removal)
ANY_ID = "{id}"


@dataclass(frozen=True)
class Route:
    resource: str | None  # files, skills, batches; None for inference and models
    kind: str
    body: str  # json: a JSON object that may name models; upload: passed as it is; none
    record: bool = False  # always writes a usage record (token-generating endpoints)
    describes: bool = False  # the answer is the object itself: the owner record keeps it
    results: bool = False  # a batch's results: metered line by line at the batch price


@dataclass(frozen=True)
class Endpoint:
    """A request's path and method as the gateway understands them."""
    route: Route
    object_id: str | None = None  # the owned id the path names (a file, skill or batch)

    @property
    def resource(self) -> str | None:
        return self.route.resource

    @property
    def kind(self) -> str:
        return self.route.kind


INFERENCE = Route(None, "inference", "json", record=True)
FREE_JSON = Route(None, "free", "json")
MODELS = Route(None, "free", "none")

# (path pattern, {method: route}); patterns match the lower-cased path, "{id}" one segment.
TABLE: tuple[tuple[str, dict[str, Route]], ...] = (
    ("/v1/messages", {"POST": INFERENCE}),
    ("/v1/messages/count_tokens", {"POST": FREE_JSON}),
    ("/v1/complete", {"POST": INFERENCE}),
    ("/v1/models", {"GET": MODELS, "HEAD": MODELS}),
    ("/v1/models/{id}", {"GET": MODELS, "HEAD": MODELS}),
    ("/v1/messages/batches", {"POST": Route("batches", "create", "json", describes=True),
                              "GET": Route("batches", "list", "none")}),
    ("/v1/messages/batches/{id}", {"GET": Route("batches", "item", "none", describes=True),
                                   "DELETE": Route("batches", "delete", "none")}),
    ("/v1/messages/batches/{id}/cancel", {"POST": Route("batches", "item", "none",
                                                        describes=True)}),
    ("/v1/messages/batches/{id}/results", {"GET": Route("batches", "item", "none",
                                                         results=True)}),
    ("/v1/files", {"POST": Route("files", "create", "upload", describes=True),
                   "GET": Route("files", "list", "none")}),
    ("/v1/files/{id}", {"GET": Route("files", "item", "none", describes=True),
                        "DELETE": Route("files", "delete", "none")}),
    ("/v1/files/{id}/content", {"GET": Route("files", "item", "none")}),
    ("/v1/skills", {"POST": Route("skills", "create", "upload", describes=True),
                    "GET": Route("skills", "list", "none")}),
    ("/v1/skills/{id}", {"GET": Route("skills", "item", "none", describes=True),
                         "DELETE": Route("skills", "delete", "none")}),
    ("/v1/skills/{id}/versions", {"GET": Route("skills", "item", "none"),
                                  "POST": Route("skills", "item", "upload")}),
    ("/v1/skills/{id}/versions/{version}", {"GET": Route("skills", "item", "none"),
                                            "DELETE": Route("skills", "item", "none")}),
)
EXTRA = Route(None, "extra", "json")  # a path the operator opened with allowPaths


def _compile(pattern: str) -> re.Pattern:
    return re.compile(re.sub(r"\\\{\w+\\\}", lambda m: "([^/]+)" if m.group(0) == r"\{id\}"
                             else "[^/]+", re.escape(pattern)))


# Paths without an id are looked up whole (every inference request: one dict lookup).
_EXACT = {pattern: methods for pattern, methods in TABLE if "{" not in pattern}
_COMPILED = tuple((_compile(pattern), methods) for pattern, methods in TABLE if "{" in pattern)


class EndpointRefused(Exception):
    """Not an endpoint for this request: ``status`` 404 (unknown) or 405 (wrong method)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def classify(method: str, path: str) -> Endpoint:
    """The endpoint of ``method path`` (``path`` as the upstream will receive it, checked by
    ``upstream_path``), or EndpointRefused."""
    lowered = path.lower()  # some mirrors route case-insensitively: what the path means
    methods, object_id = _EXACT.get(lowered), None
    if methods is None:
        for pattern, candidate in _COMPILED:
            match = pattern.fullmatch(lowered)
            if match is not None:
                methods, object_id = candidate, path[match.start(1):match.end(1)]
                break
        else:
            raise EndpointRefused(404, f"no such endpoint: {path} is not one this gateway serves")
    route = methods.get(method)
    if route is None:
        raise EndpointRefused(405, f"{path} takes {', '.join(sorted(methods))} only")
    return Endpoint(route, object_id)
