"""ServiceActionSchedules: one task per schedule that reads, decides (``schedule_policy``), acts.

Fed the schedules' watch events (``observe``) and the ServiceActions' (``observe_run``: a run's
change wakes its owner, so Forbid starts the waiting firing as soon as the previous run ends).
Each step reads the schedule and lists its runs afresh (by the ``emrops.io/schedule`` label,
kept only when the schedule owns them), so nothing a step decides rests on a lagging watch; every
write is conditioned on what was read: the schedule's status on its resourceVersion (the claim of
a firing, see ``schedule_policy``), deletes on the run's uid and resourceVersion.

It runs where the handlers run: on the leader only with ``--leader-elect``; without it, two
processes may both run a schedule and the claim keeps them from creating a run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pydantic

from emrops.api.constants import GROUP, VERSION
from emrops.api.schedule import SCHEDULE_KIND, SCHEDULE_LABEL, SCHEDULE_PLURAL, ScheduleSpec, ScheduleStatus
from emrops.api.status import format_time, parse_time
from emrops.controller import objects
from emrops.controller.apiserver import MERGE_PATCH, ApiClient, ApiError
from emrops.controller.cron import Cron, CronError
from emrops.controller.kube import Gone, status_patch
from emrops.controller.machine import Event
from emrops.controller.schedule_policy import Child, Plan, decide, run_body
from emrops.controller.tasks import spawn

logger = logging.getLogger("emrops.controller")


def _utc_now() -> datetime:
    return datetime.now(UTC)


#: Posts a Kubernetes Event about an object (``EventRecorder.emit``).
EmitFn = Callable[[Mapping[str, Any], Event], None]


def schedule_path(namespace: str, name: str) -> str:
    collection = f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{SCHEDULE_PLURAL}"
    return f"{collection}/{quote(name, safe='')}"


def owner_uids(body: Mapping[str, Any]) -> list[str]:
    """The schedules that control a ServiceAction (by owner reference)."""
    refs = (body.get("metadata") or {}).get("ownerReferences") or []
    return [str(r.get("uid")) for r in refs if r.get("kind") == SCHEDULE_KIND and r.get("controller")]


class _Redo(Exception):
    """What the step read is stale (a write conflicted, or it acted): read again at once."""


class Schedules:
    def __init__(
        self,
        api: ApiClient,
        *,
        clock: Callable[[], datetime] = _utc_now,
        resync_seconds: float = 300.0,
        retry_seconds: float = 10.0,
        emit: EmitFn = lambda _body, _event: None,
    ) -> None:
        self._api = api
        #: Events on the schedule, as a CronJob's (SuccessfulCreate, FailedCreate, SuccessfulDelete),
        #: posted by the process that acted only.
        self._emit = emit
        self._clock = clock
        #: Longest sleep between two looks, whatever the schedule says (a missed wake costs this).
        self._resync = resync_seconds
        self._retry = retry_seconds
        self._tasks: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if not uid:
            return
        found = self._tasks.get(uid)
        if event_type == "DELETED":
            if found is not None:
                found[1].cancel()
                del self._tasks[uid]
            return
        if found is not None:
            found[0].set()
            return
        wake = asyncio.Event()
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        task = spawn(
            self._loop(namespace, name, uid, wake),
            name=f"emrops schedule {namespace}/{name}",
            done=lambda done: self._done(uid, done),
        )
        self._tasks[uid] = (wake, task)

    def observe_run(self, body: Mapping[str, Any]) -> None:
        for uid in owner_uids(body):
            found = self._tasks.get(uid)
            if found is not None:
                found[0].set()

    def _done(self, uid: str, task: asyncio.Task[None]) -> None:
        found = self._tasks.get(uid)
        if found is not None and found[1] is task:
            del self._tasks[uid]

    async def _loop(self, namespace: str, name: str, uid: str, wake: asyncio.Event) -> None:
        ref = f"{namespace}/{name}"
        while True:
            wake.clear()
            try:
                delay = await self._step(namespace, name, uid)
            except _Redo:
                continue
            except Gone:
                return
            except Exception as exc:  # the apiserver or a bug: log, look again later
                logger.warning("schedule %s: %s: %s; retrying", ref, type(exc).__name__, exc)
                delay = self._retry
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.0, min(delay, self._resync)))

    async def _get(self, namespace: str, name: str, uid: str) -> dict[str, Any]:
        try:
            body = await self._api.request("GET", schedule_path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                raise Gone(f"{namespace}/{name}") from None
            raise
        if (body.get("metadata") or {}).get("uid") != uid:
            raise Gone(f"{namespace}/{name} (re-created)")
        return body

    async def _step(self, namespace: str, name: str, uid: str) -> float:
        """One look; returns how long to sleep. Raises ``_Redo`` to look again at once."""
        body = await self._get(namespace, name, uid)
        meta = body.get("metadata") or {}
        status = ScheduleStatus.from_dict(body.get("status"))
        try:
            spec = ScheduleSpec.from_body(body)
            cron = Cron.parse(spec.schedule, spec.time_zone)
        except (pydantic.ValidationError, CronError) as exc:
            message = str(exc) if isinstance(exc, CronError) else f"spec: {exc.errors()[0].get('msg')}"
            await self._write(body, status.model_copy(update={"message": message}))
            return self._resync
        listed = await objects.list_labelled(self._api, namespace, f"{SCHEDULE_LABEL}={name}")
        children = [Child.of(item) for item in listed if uid in owner_uids(item)]
        now = self._clock()
        generation = meta.get("generation")
        plan = decide(
            name=name,
            created=parse_time(meta.get("creationTimestamp")) or now,
            generation=generation if isinstance(generation, int) else None,
            spec=spec,
            cron=cron,
            status=status,
            children=children,
            now=now,
        )
        await self._act(body, spec, plan)
        if plan.wake_at is None:
            return self._resync
        return (plan.wake_at - self._clock()).total_seconds()

    async def _act(self, body: Mapping[str, Any], spec: ScheduleSpec, plan: Plan) -> None:
        meta = body.get("metadata") or {}
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        for run in plan.replace:
            if await objects.delete_if_unchanged(
                self._api, str(meta.get("namespace")), run.name, run.uid, run.resource_version
            ):
                logger.info(
                    "schedule %s: deleted %s, which had not started (concurrencyPolicy Replace)",
                    ref,
                    run.name,
                )
                self._emit(
                    body, Event("SuccessfulDelete", f"Deleted {run.name}, which had not started (Replace)")
                )
        fire = plan.fire
        if fire is not None:
            if fire.claim:
                await self._write(body, plan.status)
            try:
                await objects.create(self._api, str(meta.get("namespace")), run_body(body, spec, fire))
                logger.info("schedule %s: created %s for %s", ref, fire.name, fire.at.isoformat())
                self._emit(body, Event("SuccessfulCreate", f"Created {fire.name} for {format_time(fire.at)}"))
            except objects.AlreadyExists:
                logger.info("schedule %s: %s exists already (created by another process)", ref, fire.name)
            except ApiError as exc:
                if exc.status not in (400, 403, 422):
                    raise
                # The template is refused (a spec the ServiceAction CRD rejects, or RBAC): say so,
                # and mark the firing as done, so it is not tried again at every look.
                await self._give_up(body, fire.name, f"creating {fire.name} failed: {exc.message}")
                return
            raise _Redo
        for run in plan.prune:
            if await objects.delete_if_unchanged(
                self._api, str(meta.get("namespace")), run.name, run.uid, run.resource_version
            ):
                logger.info("schedule %s: deleted %s (history limit)", ref, run.name)
                self._emit(body, Event("SuccessfulDelete", f"Deleted {run.name} (history limit)"))
        await self._write(body, plan.status)

    async def _give_up(self, body: Mapping[str, Any], run: str, message: str) -> None:
        meta = body.get("metadata") or {}
        logger.warning("schedule %s/%s: %s", meta.get("namespace"), meta.get("name"), message)
        self._emit(body, Event("FailedCreate", message, type="Warning"))
        fresh = await self._get(str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid")))
        status = ScheduleStatus.from_dict(fresh.get("status"))
        await self._write(
            fresh, status.model_copy(update={"last_scheduled_run": run, "last_create_error": message})
        )

    async def _write(self, body: Mapping[str, Any], status: ScheduleStatus) -> None:
        """Write ``status`` over ``body``'s, conditioned on its resourceVersion; ``_Redo`` on 409."""
        meta = body.get("metadata") or {}
        patch = status_patch(body.get("status"), status.to_dict())
        if not patch:
            return
        try:
            await self._api.request(
                "PATCH",
                f"{schedule_path(str(meta.get('namespace')), str(meta.get('name')))}/status",
                body={"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch},
                content_type=MERGE_PATCH,
            )
        except ApiError as exc:
            if exc.status == 409:
                raise _Redo from None
            if exc.status == 404:
                raise Gone(str(meta.get("name"))) from None
            raise

    async def stop(self) -> None:
        tasks = [task for _wake, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
