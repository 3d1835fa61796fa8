"""The one place an HTTP response from EMR becomes a typed result or an error.

Like the SDK: any status below 400 is a success whose body must be a JSON object; 400-599
bodies are EMR's ``{RequestId, HostId, Code, Message}`` (either key case). ``x-acs-retry-after``
(milliseconds) becomes ``ApiError.retry_after`` in seconds. Error bodies that are not JSON (a
proxy's HTML page, say) still give an ``ApiError`` with a synthetic code and the real status;
their text is never copied into the error.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from multidict import CIMultiDictProxy
from pydantic import BaseModel, ValidationError

from emrops.emr.errors import ApiError, ResponseError
from emrops.emr.http import HttpResponse

M = TypeVar("M", bound=BaseModel)

RETRY_AFTER_HEADER = "x-acs-retry-after"
REQUEST_ID_HEADER = "x-acs-request-id"
_MAX_MESSAGE = 1000


def read_response(response: HttpResponse, model: type[M], *, action: str) -> M:
    """``model`` parsed from a success body; raises ``ApiError`` or ``ResponseError`` otherwise."""
    if response.status_code >= 400:
        raise api_error(response, action=action)
    body = _json_object(response)
    request_id = _request_id(body, response)
    if body is None:
        raise ResponseError(
            f"{action}: HTTP {response.status_code} response is not a JSON object"
            + (f" [RequestId {request_id}]" if request_id else "")
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors()[:5])
        raise ResponseError(
            f"{action}: HTTP {response.status_code} response does not match {model.__name__} "
            f"(fields: {fields})" + (f" [RequestId {request_id}]" if request_id else "")
        ) from None


def api_error(response: HttpResponse, *, action: str) -> ApiError:
    """The ``ApiError`` for an error response (status >= 400)."""
    status = response.status_code
    body = _json_object(response)
    code = _text(body, "Code", "code")
    message = _text(body, "Message", "message")
    if code is None:
        code = f"HTTP{status}"
        if message is None:
            kind = "a JSON body without a code" if body is not None else "a body that is not JSON"
            content_type = response.headers.get("content-type", "none")
            message = f"EMR answered HTTP {status} with {kind} (content-type {content_type})"
    return ApiError(
        code=code,
        message=_shorten(message or ""),
        http_status=status,
        request_id=_request_id(body, response),
        retry_after=retry_after_seconds(response.headers),
        action=action,
    )


def retry_after_seconds(headers: CIMultiDictProxy[str]) -> float | None:
    """``x-acs-retry-after`` (a positive integer of milliseconds) in seconds; None if absent or bad."""
    raw = headers.get(RETRY_AFTER_HEADER, "").strip()
    try:
        millis = int(raw)
    except ValueError:
        return None
    return millis / 1000 if millis > 0 else None


def _json_object(response: HttpResponse) -> dict[str, Any] | None:
    try:
        parsed = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _text(body: dict[str, Any] | None, *keys: str) -> str | None:
    if body is None:
        return None
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _request_id(body: dict[str, Any] | None, response: HttpResponse) -> str | None:
    return _text(body, "RequestId", "requestId") or response.headers.get(REQUEST_ID_HEADER) or None


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
