"""Creates, lists and deletes of ServiceActions: what the reaper and the schedules do to objects.

Kept apart from ``kube.py`` (the reads and the one status writer of a run): nothing here touches
a run's status. Every delete carries preconditions (uid and resourceVersion), so an object that
changed since the decision to delete it (a re-run asked for, a re-creation under the same name)
is left alone: the apiserver answers 409 and the caller decides again from the newer object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from emrops.controller.apiserver import ApiClient, ApiError
from emrops.controller.kube import collection_path, trimmed


class AlreadyExists(Exception):
    """A create found an object of that name (HTTP 409)."""


def object_path(namespace: str, name: str) -> str:
    return f"{collection_path(namespace)}/{quote(name, safe='')}"


async def delete_if_unchanged(
    api: ApiClient, namespace: str, name: str, uid: str, resource_version: str
) -> bool:
    """Delete the object if it is still the one read (uid and resourceVersion); True if deleted.

    False when it is already gone (404) or changed since (409: a precondition failed).
    """
    options = {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": uid, "resourceVersion": resource_version},
        # Background: the object goes now; it owns nothing emrops waits for.
        "propagationPolicy": "Background",
    }
    try:
        await api.request("DELETE", object_path(namespace, name), body=options)
    except ApiError as exc:
        if exc.status in (404, 409):
            return False
        raise
    return True


async def create(api: ApiClient, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Create a ServiceAction; raises ``AlreadyExists`` when its name is taken."""
    try:
        created = await api.request("POST", collection_path(namespace), body=dict(body))
    except ApiError as exc:
        if exc.status == 409:
            raise AlreadyExists(f"{namespace}/{(body.get('metadata') or {}).get('name')}") from None
        raise
    return trimmed(created)


async def list_labelled(api: ApiClient, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The ServiceActions of ``namespace`` matching a label selector, from a consistent read."""
    listing = await api.request("GET", collection_path(namespace), params={"labelSelector": selector})
    return [trimmed(item) for item in listing.get("items") or []]
