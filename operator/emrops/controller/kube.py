"""Reads and the one status writer, through ``kubernetes_asyncio``.

Every status write is a JSON merge patch to the ``/status`` subresource carrying the
``metadata.resourceVersion`` the decision was made from: the apiserver applies it only if the
object has not changed since (409 Conflict otherwise, raised here as ``Conflict``). That is
what makes the intent write before RunApplicationAction a lock: of two writers that read the same
Pending object, exactly one wins, and only the winner calls EMR. Writes happen only when the
rendered status differs from the stored one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from emrops.api.conditions import with_conditions
from emrops.api.constants import GROUP, PLURAL, VERSION
from emrops.api.status import RunStatus

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


class KubeApi:
    """``ObjectStore`` over a ``kubernetes_asyncio`` ApiClient (kubeconfig or in-cluster).

    ``namespaces`` are the watched ones (empty: all), for ``list_cluster``.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespaces: tuple[str, ...] = (),
        request_timeout: float = 30.0,
    ) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
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
                    found.append(item)
        return found

    async def _list(self, namespace: str | None, cluster_id: str) -> list[dict[str, Any]]:
        selector = f"spec.clusterId={cluster_id}" if self._field_selector else None
        try:
            listing = await self._list_call(namespace, selector)
        except ApiException as exc:
            if exc.status != 400 or selector is None:
                raise
            self._field_selector = False  # an apiserver without selectableFields
            listing = await self._list_call(namespace, None)
        items: list[dict[str, Any]] = listing.get("items") or []
        return items

    async def _list_call(self, namespace: str | None, selector: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"_request_timeout": self._timeout}
        if selector is not None:
            extra["field_selector"] = selector
        if namespace is None:
            listing: dict[str, Any] = await self._custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, **extra
            )
        else:
            listing = await self._custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, **extra
            )
        return listing

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = await self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                raise Gone(f"{namespace}/{name}") from None
            raise
        return found

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        patch = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            # The package's stubs omit ``_content_type``, which the method accepts (and which must be
            # merge-patch: the default it picks for dicts, strategic merge, is refused for CRs).
            result: dict[str, Any] = await self._custom.patch_namespaced_custom_object_status(  # type: ignore[call-arg]
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                _content_type="application/merge-patch+json",
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(
                    f"{namespace}/{name} changed since resourceVersion {resource_version}"
                ) from None
            if exc.status == 404:
                raise Gone(f"{namespace}/{name}") from None
            raise
        return result

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        try:
            secret = await self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as exc:
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
        for key, value in (secret.data or {}).items():
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
