"""The one place httpx exceptions become emrops errors.

The split that matters for exactly-once is whether the request can have reached EMR:

- ``RequestNotSentError``: no connection was ever made (refused, DNS failure, connect timeout,
  no free connection in the pool, proxy refused the tunnel, unusable URL). Retrying is safe.
- ``OutcomeUnknownError``: anything after a connection was up (read/write timeouts, a reset, a
  protocol error, an undecodable body) and the client's own overall deadline, which can fire at
  any point of the exchange. EMR may have acted; never resubmit blindly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from emrops.emr.errors import OutcomeUnknownError, RequestNotSentError, TransportError

#: httpx errors raised before any byte of the request left this process.
NOT_SENT: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,  # refused, unreachable, DNS resolution failed, TLS handshake failed
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


def translate(exc: BaseException, *, action: str, host: str) -> TransportError:
    """The emrops error for an httpx error (or the overall deadline's ``TimeoutError``)."""
    name = type(exc).__name__
    if isinstance(exc, NOT_SENT):
        return RequestNotSentError(f"{action}: request to {host} was not sent ({name}: {exc})")
    if isinstance(exc, TimeoutError):
        return OutcomeUnknownError(f"{action}: no complete answer from {host} before the overall deadline")
    return OutcomeUnknownError(f"{action}: request to {host} may have been received ({name}: {exc})")


@contextmanager
def translated_errors(*, action: str, host: str) -> Iterator[None]:
    """Re-raise httpx errors and deadline timeouts inside the block as ``TransportError``."""
    try:
        yield
    except (httpx.RequestError, TimeoutError) as exc:
        raise translate(exc, action=action, host=host) from exc
