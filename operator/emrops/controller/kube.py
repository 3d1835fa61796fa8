"""Reads and the one status writer, over ``controller.apiserver`` (aiohttp, kopf's credentials).

Every status write is a JSON merge patch to the ``/status`` subresource carrying the
``metadata.resourceVersion`` the decision was made from: the apiserver applies it only if the
object has not changed since (409 Conflict otherwise, raised here as ``Conflict``). That is
what makes the intent write before RunApplicationAction a lock: of two writers that read the same
Pending object, exactly one wins, and only the winner calls EMR. Writes happen only when the
rendered status differs from the stored one.

Objects read or written here are kept by workers for as long as their run lasts, so
``metadata.managedFields`` (server-side apply bookkeeping, often larger than the rest of the
object and never read by the operator) is dropped from them, and their short strings are
shared between them (``trimmed``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from emrops.api.conditions import with_conditions
from emrops.api.constants import GROUP, PLURAL, VERSION
from emrops.api.status import RunStatus
from emrops.controller.apiserver import MERGE_PATCH, ApiClient, ApiError

Body = Mapping[str, Any]


class Conflict(Exception):
    """The object changed since it was read (HTTP 409): re-read it and decide again."""


class Gone(Exception):
    """The object no longer exists (HTTP 404)."""


class SecretUnreadable(Exception):
    """A credentials Secret is missing, lacks a key, or may not be read; the message says which."""


class ObjectStore(Protocol):
    """What the runner needs from Kubernetes (``KubeApi`` here, a fake in unit tests)."""

    async def get(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]: ...

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]: ...

    async def list_cluster(self, region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        """Every watched ServiceAction on that EMR cluster, from a consistent (quorum) read."""
        ...


#: Strings up to this long are shared between the bodies the operator keeps (``trimmed``).
SHARE_MAX = 64
#: Distinct strings the sharing table holds before it starts over.
SHARED_LIMIT = 4096

_shared: dict[str, str] = {}


def trimmed(obj: Body) -> dict[str, Any]:
    """A copy of ``obj`` without ``metadata.managedFields``, its short strings shared with the other
    bodies kept (``obj`` is left alone).

    JSON decoding makes new strings for every key and value of every object. Shared, the keys,
    phases, reasons, condition types and other short strings repeated from object to object are
    one string for all of them: a worker's body (1.4 KB of JSON in the benchmark) then takes
    about 4.1 KB instead of 6.3 KB, with thousands held at once in a burst.
    """
    return {
        _share(key): _compact(value, drop="managedFields" if key == "metadata" else None)
        for key, value in obj.items()
    }


def _compact(value: Any, drop: str | None = None) -> Any:
    """``value`` copied with its dict keys and short strings shared (``drop``: a key left out)."""
    if isinstance(value, str):
        return _share(value) if len(value) <= SHARE_MAX else value
    if isinstance(value, Mapping):
        return {_share(str(k)): _compact(v) for k, v in value.items() if k != drop}
    if isinstance(value, list):
        return [_compact(item) for item in value]
    return value


def _share(text: str) -> str:
    """The one string kept for ``text``, from a table that starts over when full.

    Not ``sys.intern``: the interpreter's table of interned strings grows with every distinct
    string interned (every run's uid, resourceVersion and timestamps: 1.9 MB for that table at
    about 1,000 runs in flight) and keeps its size once they are gone, so it stayed at the size of
    a burst's peak. Cleared, this one drops the unique strings it holds, and the strings that
    repeat are back after a few bodies.
    """
    found = _shared.get(text)
    if found is not None:
        return found
    if len(_shared) >= SHARED_LIMIT:
        _shared.clear()
    _shared[text] = text
    return text


def collection_path(namespace: str | None) -> str:
    """The ServiceActions of one namespace, or of all namespaces (None)."""
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{PLURAL}"


def _object_path(namespace: str, name: str) -> str:
    return f"{collection_path(namespace)}/{quote(name, safe='')}"


class KubeApi:
    """``ObjectStore`` over the operator's ``ApiClient`` (kubeconfig or in-cluster).

    ``namespaces`` are the watched ones (empty: all), for ``list_cluster``.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        namespaces: tuple[str, ...] = (),
        request_timeout: float = 30.0,
    ) -> None:
        self._api = api
        self._namespaces = namespaces
        self._timeout = request_timeout
        #: Whether the apiserver serves the CRD's selectableFields (Kubernetes >= 1.31); learnt
        #: from the first refusal, after which whole lists are filtered here.
        self._field_selector = True

    async def list_cluster(self, region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        # No resourceVersion: the apiserver answers from a quorum read (or a watch cache it has
        # proven current), so an intent written before this call is in the answer.
        found: list[dict[str, Any]] = []
        for namespace in self._namespaces or (None,):
            for item in await self._list(namespace, cluster_id):
                spec = item.get("spec") or {}
                if spec.get("clusterId") == cluster_id and spec.get("regionId") == region_id:
                    found.append(trimmed(item))
        return found

    async def _list(self, namespace: str | None, cluster_id: str) -> list[dict[str, Any]]:
        selector = f"spec.clusterId={cluster_id}" if self._field_selector else None
        try:
            listing = await self._list_call(namespace, selector)
        except ApiError as exc:
            if exc.status != 400 or selector is None:
                raise
            self._field_selector = False  # an apiserver without selectableFields
            listing = await self._list_call(namespace, None)
        items: list[dict[str, Any]] = listing.get("items") or []
        return items

    async def _list_call(self, namespace: str | None, selector: str | None) -> dict[str, Any]:
        params = {"fieldSelector": selector} if selector is not None else None
        return await self._api.request(
            "GET", collection_path(namespace), params=params, request_timeout=self._timeout
        )

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            found = await self._api.request(
                "GET", _object_path(namespace, name), request_timeout=self._timeout
            )
        except ApiError as exc:
            if exc.status == 404:
                raise Gone(f"{namespace}/{name}") from None
            raise
        return trimmed(found)

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        patch = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            # A merge patch: strategic merge (what generated clients pick for dicts) is refused
            # for custom resources.
            result = await self._api.request(
                "PATCH",
                f"{_object_path(namespace, name)}/status",
                body=patch,
                content_type=MERGE_PATCH,
                request_timeout=self._timeout,
            )
        except ApiError as exc:
            if exc.status == 409:
                raise Conflict(
                    f"{namespace}/{name} changed since resourceVersion {resource_version}"
                ) from None
            if exc.status == 404:
                raise Gone(f"{namespace}/{name}") from None
            raise
        return trimmed(result)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(name, safe='')}"
        try:
            secret = await self._api.request("GET", path, request_timeout=self._timeout)
        except ApiError as exc:
            if exc.status == 404:
                raise SecretUnreadable(
                    f"Secret {namespace}/{name} (spec.credentialsSecretRef) not found"
                ) from None
            if exc.status == 403:
                raise SecretUnreadable(
                    f"the operator may not read Secret {namespace}/{name} (RBAC: secrets get in {namespace})"
                ) from None
            raise
        decoded: dict[str, str] = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                decoded[key] = base64.b64decode(value).decode("utf-8").strip()
            except (binascii.Error, UnicodeDecodeError):
                # Never echo the value: say only which key is unreadable.
                raise SecretUnreadable(
                    f"Secret {namespace}/{name} key {key} is not valid base64 UTF-8"
                ) from None
        return decoded


def status_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning status ``old`` into ``new``: removed keys become None.

    ``status.kopf`` (kopf's own bookkeeping, if any) is left alone.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if (old or {}).get(key) != value:
            patch[key] = value
    for key in old or {}:
        if key not in new and key != "kopf":
            patch[key] = None
    return patch


def render(body: Body, status: RunStatus, now: datetime) -> dict[str, Any]:
    """The status dict to store for ``status``: conditions rendered, observedGeneration set."""
    generation = (body.get("metadata") or {}).get("generation")
    return with_conditions(status, generation=generation, now=now).to_dict()


async def write_status(
    store: ObjectStore, body: Body, status: RunStatus, now: datetime
) -> dict[str, Any] | None:
    """Write ``status`` over ``body``'s, conditioned on its resourceVersion.

    Returns the updated object, or None when nothing changed (no request is made). Raises
    ``Conflict`` when the object changed since ``body`` was read, ``Gone`` when it is deleted.
    """
    meta = body.get("metadata") or {}
    old = body.get("status") or {}
    new = render(body, status, now)
    patch = status_patch(old, new)
    if not patch:
        return None
    return await store.patch_status(meta["namespace"], meta["name"], patch, str(meta["resourceVersion"]))
