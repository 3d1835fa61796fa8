"""The aiohttp application: the RPC endpoint ``/`` and the unsigned ``/_emulator/`` inspection API.

``create_app(settings)`` builds it; one route table; state lives under typed ``AppKey``s and is
opened and closed in ``cleanup_ctx``; one error middleware renders every failure as EMR's JSON
error body from the shared error table, so no request, however malformed, gets a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from emrops.acs.codes import TABLE
from emrops.emulator.actions import ACTIONS, Context
from emrops.emulator.auth import V1_AUTH_PARAMS, SignedRequest, claimed_access_key_id
from emrops.emulator.errors import EmulatorError
from emrops.emulator.faults import FaultHit, parse_fault
from emrops.emulator.params import Params
from emrops.emulator.settings import API_VERSION, EmulatorSettings
from emrops.emulator.state import CallRecord, EmulatorState

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", EmulatorSettings)
STATE = web.AppKey("state", EmulatorState)

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
_FORM = "application/x-www-form-urlencoded"
# Statuses aiohttp itself may raise (no route, bad method, body too large) and the code they become.
_STATUS_CODES = {
    404: "ResourceNotFound",
    405: "InvalidAction",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def create_app(settings: EmulatorSettings | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = settings or EmulatorSettings()
    app.cleanup_ctx.append(_state_ctx)
    app.router.add_routes(
        [
            web.post("/", api),
            web.get("/", api),
            web.get("/_emulator/calls", get_calls),
            web.get("/_emulator/faults", get_faults),
            web.post("/_emulator/faults", post_faults),
            web.delete("/_emulator/faults", delete_faults),
            web.post("/_emulator/reset", post_reset),
            web.get("/_emulator/state", get_state),
            web.post("/_emulator/nodes", post_node),
        ]
    )
    return app


async def _state_ctx(app: web.Application) -> AsyncIterator[None]:
    state = EmulatorState(app[SETTINGS])
    app[STATE] = state
    yield
    await state.engine.cancel_all()


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        status=status,
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Dropped:
        return web.Response(status=204)  # never sent: the transport is gone
    except ConnectionError:
        # The client went away (e.g. mid-body): nobody to answer, and not an emulator bug.
        log.debug("client of %s %s went away", request.method, request.path)
        return web.Response(status=204)
    except EmulatorError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "InvalidParameter")
        error = EmulatorError(code, exc.reason if "%s" in TABLE[code].message else "")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        error = EmulatorError("InternalError")
    request_id = error.request_id or new_request_id()
    headers = {"x-acs-request-id": request_id, **error.headers}
    body = error.body(request_id, request.app[SETTINGS].host_id)
    return json_response(body, status=error.http_status, headers=headers)


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


# --- the RPC endpoint -------------------------------------------------------------------------


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise EmulatorError("InvalidParameter", where) from None


async def api(request: web.Request) -> web.StreamResponse:
    """Every EMR API call: ``/`` with the parameters in the query and/or a form body."""
    state = request.app[STATE]
    request_id = new_request_id()
    body = await request.read()
    call = state.record(action=None, params={}, access_key_id=None, request_id=request_id)
    try:
        query = _pairs(request.rel_url.raw_query_string, "query string")
        form: list[tuple[str, str]] = []
        if request.content_type == _FORM and body:
            try:
                form = _pairs(body.decode("utf-8"), "request body")
            except UnicodeDecodeError:
                raise EmulatorError("InvalidParameter", "request body") from None
        signed = SignedRequest(
            method=request.method,
            path=request.rel_url.raw_path,
            query=query,
            form=form,
            headers={name.lower(): request.headers.getall(name) for name in request.headers},
            body=body,
        )
        flat = {k: v for k, v in [*query, *form] if k not in V1_AUTH_PARAMS}
        call.params = flat
        call.action = signed.header("x-acs-action") or signed.param("Action")
        call.access_key_id = claimed_access_key_id(signed)
        call.signature = (
            "ACS3" if signed.header("authorization") else "V1" if signed.param("Signature") else None
        )
        response = await _serve(request, state, signed, flat, call)
    except EmulatorError as exc:
        call.outcome, call.http_status = exc.code, exc.http_status
        exc.request_id = request_id
        log.info("%s %s -> %s", call.action, call.access_key_id, exc.code)
        raise
    except _Dropped:
        raise
    except Exception:  # rendered as InternalError by the middleware; the log must say so too
        call.outcome, call.http_status = "InternalError", 500
        raise
    return response


async def _serve(
    request: web.Request, state: EmulatorState, signed: SignedRequest, flat: dict[str, str], call: CallRecord
) -> web.StreamResponse:
    key = state.auth.verify(signed)
    action = call.action
    if not action:
        raise EmulatorError("MissingAction")
    version = signed.header("x-acs-version") or signed.param("Version")
    if not version:
        raise EmulatorError("MissingParameter", "Version")
    if version != API_VERSION:
        raise EmulatorError("InvalidParameter", "Version")
    handler = ACTIONS.get(action)
    if handler is None:
        raise EmulatorError("InvalidAction", action)
    state.throttle.check(key.access_key_id, state.rate_limit(key))
    params = Params(flat)

    hit = state.faults.draw(action, flat.get("ClusterId"))
    if hit is not None:
        await _before(request, state, hit, call)
    ctx = Context(world=state.world, engine=state.engine, scenario=state.settings.scenario, key=key)
    outcome = handler(ctx, params)
    call.operation_id = outcome.operation_id
    if hit is not None and hit.drop_after_apply:
        _drop(request, call)
    log.info("%s %s -> OK %s", action, key.access_key_id, outcome.operation_id or "")
    body = {"RequestId": call.request_id, **outcome.body}
    return json_response(body, headers={"x-acs-request-id": call.request_id})


async def _before(request: web.Request, state: EmulatorState, hit: FaultHit, call: CallRecord) -> None:
    if hit.latency:
        await asyncio.sleep(hit.latency)
    if hit.drop_before_apply:
        _drop(request, call)
    if hit.code is not None:
        headers: dict[str, str] = {}
        retry_after = hit.retry_after_ms
        if retry_after is None and TABLE[hit.code].throttling:
            retry_after = max(1, round(1000 * state.settings.time_scale))
        if retry_after is not None:
            headers["x-acs-retry-after"] = str(retry_after)
        raise EmulatorError(hit.code, hit.detail, headers=headers)


class _Dropped(Exception):
    """The connection was aborted on purpose; nothing is to be sent."""


def _drop(request: web.Request, call: CallRecord) -> None:
    """Abort the connection with a TCP reset, so the client sees no answer at all."""
    call.dropped, call.http_status = True, None
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise _Dropped


# --- the inspection API -----------------------------------------------------------------------


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EmulatorError("InvalidParameter", "JSON body") from None


async def get_calls(request: web.Request) -> web.Response:
    action = request.query.get("action")
    calls = [c.to_json() for c in request.app[STATE].calls if action is None or c.action == action]
    return json_response({"calls": calls})


async def get_faults(request: web.Request) -> web.Response:
    return json_response({"faults": request.app[STATE].faults.active()})


async def post_faults(request: web.Request) -> web.Response:
    """Add faults: one rule, a list, or ``{"faults": [...], "replace": true}``."""
    raw = await _json_body(request)
    replace = False
    if isinstance(raw, dict) and "faults" in raw:
        replace = bool(raw.get("replace", False))
        raw = raw["faults"]
    rules = raw if isinstance(raw, list) else [raw]
    try:
        specs = [parse_fault(rule) for rule in rules]
    except ValueError as exc:
        raise EmulatorError("InvalidParameter", f"fault ({exc})") from None
    book = request.app[STATE].faults
    if replace:
        book.clear()
    for spec in specs:
        book.add(spec)
    return json_response({"faults": book.active()})


async def delete_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return json_response({"faults": []})


async def post_reset(request: web.Request) -> web.Response:
    await request.app[STATE].reset()
    return json_response({"reset": True})


async def get_state(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response({**state.world.to_state(), "faults": state.faults.active()})


async def post_node(request: web.Request) -> web.Response:
    """Mark a node abnormal or healthy, and optionally set its ListNodes ``NodeState``:
    ``{"cluster_id", "node" (id or name), "abnormal": bool, "state": "Stopped"}``."""
    raw = await _json_body(request)
    if not isinstance(raw, dict):
        raise EmulatorError("InvalidParameter", "JSON body")
    cluster = request.app[STATE].world.clusters.get(str(raw.get("cluster_id")))
    if cluster is None:
        raise EmulatorError("ResourceNotFound", f"cluster_id {raw.get('cluster_id')}")
    ref = str(raw.get("node"))
    node = cluster.nodes.get(ref) or cluster.node_by_name(ref)
    if node is None:
        raise EmulatorError("ResourceNotFound", f"node {ref}")
    node.abnormal = bool(raw.get("abnormal", True))
    if raw.get("state") is not None:
        node.state = str(raw["state"])
    return json_response({**node.to_api(), "Abnormal": node.abnormal})
