"""``/openai/v1``: an OpenAI-compatible Chat Completions surface over the Anthropic upstreams."""
from __future__ import annotations

import json
import time
from typing import Iterable, Iterator

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.wsgi import ClosingIterator

from ..errors import ANTHROPIC_VERSION, GatewayError
from ..metering import admitted, forward_metered
from ..openai.models import model_list
from ..openai.request import TranslationError, resolve_model, to_anthropic
from ..openai.response import error_from_anthropic, openai_error, to_chat_completion
from ..openai.stream import StreamTranslator, sse_data
from ..proxy import ProxyRequest
from ..request_meta import parse_json_object, session_id
from ..server import CLIENT_SOCKET_KEY
from . import authenticate, check_models, current_gateway, request_body

bp = Blueprint("openai", __name__, url_prefix="/openai/v1")


@bp.before_request
def surface_enabled():
    if not current_gateway().config.openai.enabled:
        raise GatewayError(404, "the OpenAI-compatible API is turned off on this gateway")


def drain(body: Iterable[bytes]) -> bytes:
    """A whole relayed body (error answers and non-streaming messages are small)."""
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def translate_stream(body: Iterable[bytes], translator: StreamTranslator) -> Iterator[bytes]:
    for chunk in body:
        out = translator.feed(chunk)
        if out:
            yield out
    tail = translator.close()
    if tail:
        yield tail
    if not translator.finished:
        yield sse_data(openai_error(502, "the upstream stream ended before the message was complete",
                                 "api_error"))


def _bad_request(e: TranslationError) -> GatewayError:
    return GatewayError(400, e.message, error_type="invalid_request_error", param=e.param,
                        code=e.code)


@bp.post("/chat/completions")
def chat_completions():
    gw = current_gateway()
    tenant = authenticate()
    try:
        body = parse_json_object(request_body())
    except ValueError as e:
        raise GatewayError(400, str(e)) from None
    settings = gw.config.openai
    requested = body.get("model")
    try:
        model = resolve_model(requested, settings.models, settings.default_model)
        check_models(tenant, [model])
        translated = to_anthropic(body, model, settings.default_max_tokens)
    except TranslationError as e:
        raise _bad_request(e) from None
    anthropic_body = translated.body
    stream = bool(anthropic_body.get("stream"))
    headers = [("content-type", "application/json"), ("anthropic-version", ANTHROPIC_VERSION)]
    if request.headers.get("user-agent"):
        headers.append(("user-agent", request.headers["user-agent"]))
    req = ProxyRequest(method="POST", path="/v1/messages", query="", headers=headers,
                       body=json.dumps(anthropic_body, ensure_ascii=False).encode(), model=model,
                       stream=stream, session=session_id(request.headers, anthropic_body),
                       body_json=anthropic_body,
                       client_socket=request.environ.get(CLIENT_SOCKET_KEY),
                       interim_ok=request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1")
    relay, g.meter = forward_metered(gw, tenant, req, api="openai", requested_model=requested,
                                   request_id=g.request_id,
                                   record=True, user_agent=request.headers.get("user-agent"))
    out_headers = {}
    remaining = g.meter.admission.daily_remaining_usd
    if remaining is not None and relay.status < 400:
        out_headers["x-ccgate-daily-remaining-usd"] = f"{remaining:.4f}"
    upstream_headers = dict((k.lower(), v) for k, v in relay.headers)
    created = int(time.time())
    if relay.status >= 400:
        if "retry-after" in upstream_headers:
            out_headers["retry-after"] = upstream_headers["retry-after"]
        return Response(json.dumps(error_from_anthropic(relay.status, drain(relay.body))),
                        status=relay.status, mimetype="application/json", headers=out_headers)
    if upstream_headers.get("content-type", "").startswith("text/event-stream"):
        translator = StreamTranslator(requested, created, include_usage=translated.include_usage,
                                      json_tool=translated.json_tool)
        body_iter = ClosingIterator(translate_stream(relay.body, translator), [relay.body.close])
        return Response(body_iter, mimetype="text/event-stream", direct_passthrough=True,
                        headers={**out_headers, "cache-control": "no-cache"})
    try:
        message = json.loads(drain(relay.body))
    except ValueError:
        raise GatewayError(502, "the upstream answered with a body that is not JSON") from None
    return Response(json.dumps(to_chat_completion(message, requested, created, translated.json_tool),
                               ensure_ascii=False),
                    mimetype="application/json", headers=out_headers)


def _models_for(tenant) -> list[dict]:
    settings = current_gateway().config.openai
    return model_list(settings.models, settings.default_model, tenant.allowed)


@bp.get("/models")
def list_models():
    tenant = authenticate()
    with admitted(current_gateway(), tenant):
        return jsonify({"object": "list", "data": _models_for(tenant)})


@bp.get("/models/<path:model_id>")
def get_model(model_id: str):
    tenant = authenticate()
    with admitted(current_gateway(), tenant):
        for entry in _models_for(tenant):
            if entry["id"] == model_id:
                return jsonify(entry)
    raise GatewayError(404, f"The model `{model_id}` does not exist", code="model_not_found")
