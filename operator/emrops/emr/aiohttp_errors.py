"""The one place aiohttp exceptions become emrops errors.

The split that matters for exactly-once is whether the request can have reached EMR:

- ``RequestNotSentError``: no connection was ever made for it (refused, DNS failure, TLS
  handshake or certificate refused, connect timeout, a proxy that refused the tunnel, an unusable
  URL). aiohttp raises these from its connector, before a byte of the request is written, and
  never for a failure on a connection already up. Retrying is safe.
- ``OutcomeUnknownError``: everything else, after a connection was up (a server that hung up, a
  reset, a read timeout, an answer that does not parse) and the client's own overall deadline,
  which can fire at any point of the exchange. EMR may have acted; never resubmit blindly.

aiohttp retries a request on a dropped keep-alive connection only for idempotent methods; the
EMR API is POST, so a request is written at most once per call.

The aiohttp exception is not chained to ours: some carry the request (``request_info``), whose
headers hold the STS token. Its type and text (without any URL user info) are in our message.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import aiohttp

from emrops.emr.errors import OutcomeUnknownError, RequestNotSentError, TransportError
from emrops.redaction import exception_text

T = TypeVar("T")

#: aiohttp errors raised before any byte of the request left this process.
NOT_SENT: tuple[type[Exception], ...] = (
    # Refused, unreachable, DNS, TLS handshake and certificate errors, a proxy not reachable:
    # every error of establishing the connection (ClientConnectorDNSError, ClientSSLError,
    # ClientConnectorCertificateError, ClientProxyConnectionError... are subclasses).
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,  # the connection was not up within the connect timeout
    aiohttp.ClientHttpProxyError,  # the proxy answered the tunnel's CONNECT with an error
    aiohttp.InvalidURL,  # refused before connecting (InvalidUrlClientError is a subclass)
    aiohttp.NonHttpUrlClientError,
)


def translate(exc: BaseException, *, action: str, host: str) -> TransportError:
    """The emrops error for an aiohttp error (or the overall deadline's ``TimeoutError``)."""
    if isinstance(exc, NOT_SENT):
        return RequestNotSentError(f"{action}: request to {host} was not sent ({exception_text(exc)})")
    if type(exc) is TimeoutError:
        return OutcomeUnknownError(f"{action}: no complete answer from {host} before the overall deadline")
    return OutcomeUnknownError(f"{action}: request to {host} may have been received ({exception_text(exc)})")


async def translated(call: Awaitable[T], *, action: str, host: str) -> T:
    """``call``'s result; aiohttp errors and timeouts become ``TransportError``, unchained."""
    try:
        return await call
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        failure = translate(exc, action=action, host=host)
    raise failure  # outside the except: no __context__ (request_info holds the headers)
