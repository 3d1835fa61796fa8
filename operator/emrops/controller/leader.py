"""Leader election on a ``coordination.k8s.io`` Lease, the way client-go's leaderelection does it.

With ``--leader-elect``, replicas of the operator elect one leader; the others stand by (alive and
ready, watching nothing) until the lease is free:

- The Lease names its holder and how long a hold lasts (``leaseDurationSeconds`` from
  ``renewTime``). A candidate takes it when it has no holder, or when its record has not changed
  for a lease duration *as measured by the candidate's own clock* since it first saw that record,
  so clock skew between nodes does not matter, only the rate of time. Every take and renewal is
  an update conditioned on the Lease's resourceVersion: of two candidates, one wins.
- The leader renews every ``retry_period``. When it has not renewed for ``renew_deadline`` it
  has lost the lease and stops leading (the process exits and its pod restarts as a standby).
  ``renew_deadline`` is below ``lease_duration``, so it stops before anyone else may take over.
- On a clean shutdown the leader releases the Lease (no holder, a 1 s duration), so a standby
  takes over within one retry period instead of a whole lease duration.

Exactly once never rests on this: every status write is conditional, so two processes that both
believe they lead (a paused VM, a partition) still call EMR once per run. Leader election saves
their duplicate reads, polls and conflicts, and makes a standby ready to take over at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from emrops.controller.apiserver import ApiClient, ApiError

logger = logging.getLogger("emrops.leader")


class LeaseConflict(Exception):
    """The Lease changed (409) or was created by someone else meanwhile: read it again."""


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration, got "
                f"{self.retry_period:g} < {self.renew_deadline:g} < {self.lease_duration:g}"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The fields of a Lease's spec that election uses, plus its resourceVersion."""

    holder: str | None
    duration: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    resource_version: str = ""


class LeaseStore(Protocol):
    """One Lease object (``KubeLeases`` here, a fake in tests)."""

    async def get(self) -> LeaseRecord | None: ...

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        """Raises ``LeaseConflict`` when it exists already."""
        ...

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """Conditioned on ``record.resource_version``; raises ``LeaseConflict`` when it changed."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Elector:
    """Takes, keeps and releases one Lease for ``config.identity`` (see the module docstring)."""

    def __init__(
        self,
        config: LeaseConfig,
        store: LeaseStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self._clock = clock
        self._now = now
        #: The record as we last saw it, and when (our clock) we first saw it so.
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        #: Our clock when we last took or renewed the lease.
        self._renewed_at: float | None = None

    @property
    def leading(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and self._clock() - renewed < self.config.renew_deadline

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        cfg = self.config
        now = self._now()
        duration = max(1, round(cfg.lease_duration))
        record = await self.store.get()
        if record is None:
            mine = LeaseRecord(cfg.identity, duration, now, now, 0)
            try:
                self._see(await self.store.create(mine))
            except LeaseConflict:
                return False
            return self._renewed()
        self._see(record)
        held = bool(record.holder) and record.holder != cfg.identity
        if held and self._observed_at + record.duration > self._clock():
            return False  # someone else holds it, and has renewed within its duration
        taking = record.holder != cfg.identity
        mine = replace(
            record,
            holder=cfg.identity,
            duration=duration,
            renew_time=now,
            acquire_time=now if taking else record.acquire_time,
            transitions=record.transitions + 1 if taking and record.holder else record.transitions,
        )
        try:
            self._see(await self.store.update(mine))
        except LeaseConflict:
            return False
        return self._renewed()

    def _see(self, record: LeaseRecord) -> None:
        observed = self._observed
        if observed is None or observed.resource_version != record.resource_version:
            self._observed = record
            self._observed_at = self._clock()

    def _renewed(self) -> bool:
        if not self.leading:
            cfg = self.config
            logger.info("took the lease %s/%s as %s", cfg.namespace, cfg.name, cfg.identity)
        self._renewed_at = self._clock()
        return True

    async def acquire(self) -> None:
        """Wait until we hold the lease."""
        logger.info("waiting for the lease %s/%s", self.config.namespace, self.config.name)
        while True:
            if await self._attempt():
                return
            await asyncio.sleep(self.config.retry_period)

    async def keep(self, lost: asyncio.Event) -> None:
        """Renew every retry period; set ``lost`` (and return) once a renewal is overdue."""
        cfg = self.config
        while True:
            await asyncio.sleep(cfg.retry_period)
            await self._attempt()
            if not self.leading:
                logger.error(
                    "could not renew the lease %s/%s for %gs: no longer the leader",
                    cfg.namespace,
                    cfg.name,
                    cfg.renew_deadline,
                )
                lost.set()
                return

    async def _attempt(self) -> bool:
        try:
            async with asyncio.timeout(self.config.retry_period):
                return await self.try_acquire_or_renew()
        except Exception as exc:  # one failed round trip: the deadline decides, not one error
            # An ApiError's text says what failed (the status, or why there was no answer: an
            # unresolvable apiserver address in a pod) and never holds the token; any other
            # exception is named only.
            reason = str(exc) if isinstance(exc, ApiError) else type(exc).__name__
            logger.warning("lease %s/%s: %s", self.config.namespace, self.config.name, reason)
            return False

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), if we still hold it."""
        if not self.leading:
            return
        self._renewed_at = None
        try:
            record = await self.store.get()
            if record is None or record.holder != self.config.identity:
                return
            now = self._now()
            released = replace(record, holder=None, duration=1, renew_time=now, acquire_time=now)
            await self.store.update(released)
            logger.info("released the lease %s/%s", self.config.namespace, self.config.name)
        except Exception as exc:  # the lease then expires on its own
            logger.warning("could not release the lease: %s", type(exc).__name__)


class KubeLeases:
    """``LeaseStore`` over the operator's ``ApiClient`` (``coordination.k8s.io/v1`` JSON)."""

    def __init__(self, api: ApiClient, namespace: str, name: str, *, request_timeout: float = 10.0) -> None:
        self._api = api
        self._namespace = namespace
        self._name = name
        self._timeout = request_timeout
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases"

    def _record(self, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return LeaseRecord(
            holder=spec.get("holderIdentity") or None,
            duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=_parse_micro(spec.get("acquireTime")),
            renew_time=_parse_micro(spec.get("renewTime")),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self._name, "namespace": self._namespace}
        if record.resource_version:
            metadata["resourceVersion"] = record.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": record.holder or "",
                "leaseDurationSeconds": record.duration,
                "acquireTime": _micro(record.acquire_time),
                "renewTime": _micro(record.renew_time),
                "leaseTransitions": record.transitions,
            },
        }

    async def get(self) -> LeaseRecord | None:
        try:
            lease = await self._api.request(
                "GET", f"{self._collection}/{quote(self._name, safe='')}", request_timeout=self._timeout
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return self._record(lease)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        try:
            lease = await self._api.request(
                "POST", self._collection, body=self._body(record), request_timeout=self._timeout
            )
        except ApiError as exc:
            if exc.status == 409:
                raise LeaseConflict(self._name) from None
            raise
        return self._record(lease)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        try:
            lease = await self._api.request(
                "PUT",
                f"{self._collection}/{quote(self._name, safe='')}",
                body=self._body(record),
                request_timeout=self._timeout,
            )
        except ApiError as exc:
            if exc.status in (409, 404):
                raise LeaseConflict(self._name) from None
            raise
        return self._record(lease)


def _micro(moment: datetime | None) -> str | None:
    """A Lease's MicroTime: RFC 3339 in UTC with microseconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
