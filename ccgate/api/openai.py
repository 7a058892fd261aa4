"""``/openai/v1``: an OpenAI-compatible Chat Completions surface over the Anthropic upstreams."""
from __future__ import annotations

import json
from datetime import datetime, timezone
import time

from flask import Blueprint, Response, g, jsonify, request

from ..core.errors import ANTHROPIC_VERSION, GatewayError
from ..openai.models import model_list
from ..usage.catalogue import current_models
from ..openai.request import TranslationError, Translated, resolve_model, to_anthropic
from ..openai.response import error_from_anthropic, openai_error, to_chat_completion
from ..openai.responses_output import to_response
from ..openai.responses_stream import ResponsesStream
from ..openai.responses_request import WEB_SEARCH_TOOL, to_chat
from ..openai.stream import StreamTranslator, sse_data
from ..proxy import ProxyRequest, Relay
from ..core.json_object import parse_json_object
from .request import client_side, current_gateway, drain, remaining_headers, request_body, session_id
from .auth import check_models, tenant_required

bp = Blueprint("openai", __name__, url_prefix="/openai/v1")


@bp.before_request
def surface_enabled():
    if not current_gateway().config.openai.enabled:
        raise GatewayError(404, "the OpenAI-compatible API is turned off on this gateway")


class ChatStream:
    """The relay's transform for a streamed chat completion: Anthropic SSE in, OpenAI chunks out."""

    def __init__(self, translator: StreamTranslator):
        self.translator = translator

    def feed(self, data: bytes) -> bytes:
        return self.translator.feed(data)

    def end(self) -> bytes:
        tail = self.translator.close()
        if not self.translator.finished:
            tail += sse_data(openai_error(
                502, "the upstream stream ended before the message was complete", "api_error"))
        return tail


def _bad_request(e: TranslationError) -> GatewayError:
    return GatewayError(400, e.message, error_type="invalid_request_error", param=e.param,
                        code=e.code)


@bp.post("/chat/completions")
@tenant_required
def chat_completions():
    gw = current_gateway()
    requested, translated = _translate(gw, g.call.tenant, _body(gw))  # g.call names the model
    relay = _forward(gw, translated.body)
    return _chat_response(relay, remaining_headers(g.meter, relay.status), requested, translated)


@bp.post("/responses")
@tenant_required
def responses():
    """The Responses API (Codex CLI, the Agents SDK) over the same translation: the request is
    restated as Chat Completions, the answer (whole or streamed) as a Response."""
    gw = current_gateway()
    body = _body(gw)
    try:
        chat, names = to_chat(body)
    except TranslationError as e:
        raise _bad_request(e) from None
    g.call.surface = RESPONSES_API
    requested, translated = _translate(gw, g.call.tenant, {**chat, "model": body.get("model")})
    if names.web_search:
        translated.body.setdefault("tools", []).append(WEB_SEARCH_TOOL)
    relay = _forward(gw, translated.body)
    out_headers = remaining_headers(g.meter, relay.status)
    if relay.status >= 400:
        return _error_answer(relay, out_headers)
    echo = {name: body[name] for name in RESPONSE_ECHO if body.get(name) is not None}
    echo["store"] = False  # nothing is kept, whatever was asked
    created = int(time.time())
    if relay.answer.sse:
        stream = ResponsesStream(requested, created, echo, translated.json_tool, names)
        relay.body.transform = stream
        return Response(relay.body, mimetype="text/event-stream", direct_passthrough=True,
                        headers={**out_headers, "cache-control": "no-cache"})
    return Response(json.dumps(to_response(_message(relay), requested, created, echo,
                                           translated.json_tool, names), ensure_ascii=False),
                    mimetype="application/json", headers=out_headers)


RESPONSES_API = "openai-responses"  # the records' ``api`` for /openai/v1/responses
# Request fields a Response repeats back.
RESPONSE_ECHO = ("instructions", "max_output_tokens", "metadata", "parallel_tool_calls",
                 "temperature", "tool_choice", "tools", "top_p", "user", "text", "reasoning")


def _body(gw) -> dict:
    try:
        return parse_json_object(request_body(gw))
    except ValueError as e:
        raise GatewayError(400, str(e)) from None


def _forward(gw, anthropic_body: dict) -> Relay:
    """Send the translated request through the gateway (limits, pool, metering)."""
    headers = [("content-type", "application/json"), ("anthropic-version", ANTHROPIC_VERSION)]
    if request.headers.get("user-agent"):
        headers.append(("user-agent", request.headers["user-agent"]))
    req = ProxyRequest(method="POST", path="/v1/messages", query="", headers=headers,
                       body=json.dumps(anthropic_body, ensure_ascii=False).encode(),
                       model=anthropic_body["model"], stream=bool(anthropic_body.get("stream")),
                       session=session_id(request.headers, anthropic_body),
                       body_json=anthropic_body, **client_side(request.environ))
    relay, g.meter = gw.forward(g.call, req)
    return relay


def _translate(gw, tenant, body: dict) -> tuple[object, Translated]:
    """The requested model name and the Anthropic request for this Chat Completions body."""
    settings = gw.config.openai
    requested = body.get("model")
    g.call.requested_model = requested if isinstance(requested, str) else None
    try:
        model = tenant.rewrite(resolve_model(requested, settings.models, settings.default_model))
        check_models(tenant, [model])
        return requested, to_anthropic(body, model, settings.default_max_tokens)
    except TranslationError as e:
        raise _bad_request(e) from None


def _error_answer(relay: Relay, out_headers: dict) -> Response:
    """An upstream error in OpenAI's shape (its retry-after kept)."""
    upstream_headers = dict((k.lower(), v) for k, v in relay.headers)
    if "retry-after" in upstream_headers:
        out_headers["retry-after"] = upstream_headers["retry-after"]
    return Response(json.dumps(error_from_anthropic(relay.status, drain(relay.body))),
                    status=relay.status, mimetype="application/json", headers=out_headers)


def _message(relay: Relay) -> dict:
    try:
        return json.loads(drain(relay.body))
    except ValueError:
        raise GatewayError(502, "the upstream answered with a body that is not JSON") from None


def _chat_response(relay: Relay, out_headers: dict, requested, translated: Translated) -> Response:
    """The upstream's answer as a chat completion: an error, a translated stream, or a body."""
    created = int(time.time())
    if relay.status >= 400:
        return _error_answer(relay, out_headers)
    if relay.answer.sse:
        translator = StreamTranslator(requested, created, include_usage=translated.include_usage,
                                      json_tool=translated.json_tool)
        relay.body.transform = ChatStream(translator)
        return Response(relay.body, mimetype="text/event-stream", direct_passthrough=True,
                        headers={**out_headers, "cache-control": "no-cache"})
    return Response(json.dumps(to_chat_completion(_message(relay), requested, created,
                                                  translated.json_tool),
                               ensure_ascii=False),
                    mimetype="application/json", headers=out_headers)


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@tenant_required
def unknown(rest: str):
    """Any other path: 404 after the key is checked (a stranger learns nothing; the access log
    names the tenant that asked)."""
    raise GatewayError(404, f"no such endpoint: /openai/v1/{rest} (this gateway serves "
                            f"chat/completions, responses and models)", error_type="not_found_error")


def _models_for(tenant) -> list[dict]:
    settings = current_gateway().config.openai
    today = datetime.now(timezone.utc).date()
    return model_list(settings.models, settings.default_model, tenant.allowed,
                      current_models(today))


@bp.get("/models")
@tenant_required
def list_models():
    with current_gateway().admitted(g.call.tenant):
        return jsonify({"object": "list", "data": _models_for(g.call.tenant)})


@bp.get("/models/<path:model_id>")
@tenant_required
def get_model(model_id: str):
    with current_gateway().admitted(g.call.tenant):
        for entry in _models_for(g.call.tenant):
            if entry["id"] == model_id:
                return jsonify(entry)
    raise GatewayError(404, f"The model `{model_id}` does not exist", code="model_not_found")
