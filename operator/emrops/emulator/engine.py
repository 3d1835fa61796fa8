"""Runs operations in time: batches, instance state changes, failures and the final state.

One asyncio task per operation. With RollingExecute the targets run in batches of BatchSize, the
next batch starting Interval seconds after the previous one ended; without it, all at once. Each
state change of an instance takes one step (``engine.step_seconds``): restart is STOPPING,
STOPPED, STARTING for a step each, then STARTED. Instances on abnormal nodes
fail their first step (START_FAILED / STOP_FAILED). FAILED_BLOCK stops after the first batch with
a failure; FAILED_CONTINUE runs every batch; either way an operation with a failure ends FAILED
with StateChangeReason NodeFailure naming the nodes. Every duration is multiplied by the time scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from emrops.emulator.model import (
    ACTION_STATES,
    Cluster,
    ComponentInstance,
    InstanceState,
    Operation,
    OperationState,
)

log = logging.getLogger(__name__)

_FAILED_FROM = {
    InstanceState.STOPPING: InstanceState.STOP_FAILED,
    InstanceState.STARTING: InstanceState.START_FAILED,
}
_DESIRED = {"start": InstanceState.STARTED, "restart": InstanceState.STARTED, "stop": InstanceState.STOPPED}


class OperationEngine:
    """Starts and cancels the tasks that run operations."""

    def __init__(
        self, *, step_seconds: float, time_scale: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.step_seconds = step_seconds
        self.time_scale = time_scale
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, cluster: Cluster, op: Operation) -> None:
        task = asyncio.get_running_loop().create_task(self._run(cluster, op), name=op.operation_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self.time_scale)

    async def _run(self, cluster: Cluster, op: Operation) -> None:
        try:
            await self._run_batches(cluster, op)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not leave the operation IN_PROGRESS forever
            log.exception("operation %s crashed", op.operation_id)
            self._finish(op, OperationState.FAILED, "InternalError", "The emulator's engine failed.")
            return
        failed = op.failed
        human = cluster.spec.human_processing
        if failed:
            names = ", ".join(f"{a}/{c} on {cluster.nodes[n].name} ({n})" for a, c, n in failed)
            state = OperationState.HUMAN_PROCESSING if human == "on_failure" else OperationState.FAILED
            self._finish(op, state, "NodeFailure", f"Failed to {op.action_name} {names}.")
        elif human == "always":
            self._finish(
                op,
                OperationState.HUMAN_PROCESSING,
                "ServiceFailure",
                "The operation is waiting for manual processing.",
            )
        else:
            self._finish(op, OperationState.COMPLETED, None, None)

    def _finish(self, op: Operation, state: OperationState, code: str | None, message: str | None) -> None:
        op.state = state
        op.reason_code, op.reason_message = code, message
        # HUMAN_PROCESSING waits for a person: it has not ended.
        op.end_time = None if state == OperationState.HUMAN_PROCESSING else self._now_ms()
        log.info("operation %s %s", op.operation_id, state.value)

    async def _run_batches(self, cluster: Cluster, op: Operation) -> None:
        for batch in op.batches:
            if batch.index > 0 and op.rolling and op.interval > 0:
                await self._sleep(op.interval)
            batch.start = self._clock()
            instances = [cluster.instances[key] for key in batch.keys]
            for inst in instances:
                inst.node.busy += 1
                inst.desired_state = _DESIRED.get(op.action_name, inst.desired_state)
            try:
                failed = await self._run_batch(op.action_name, instances)
            finally:
                for inst in instances:
                    inst.node.busy -= 1
            batch.failed = [inst.key for inst in failed]
            batch.end = self._clock()
            if failed and op.strategy == "FAILED_BLOCK":
                return

    async def _run_batch(self, action: str, instances: list[ComponentInstance]) -> list[ComponentInstance]:
        states = ACTION_STATES[action]
        if not states:
            await self._sleep(self.step_seconds)
            return [inst for inst in instances if inst.node.abnormal]
        alive = list(instances)
        failed: list[ComponentInstance] = []
        for number, state in enumerate(states):
            for inst in alive:
                inst.state = state
            if number == len(states) - 1:
                break
            await self._sleep(self.step_seconds)  # every state but the final one lasts a step
            if state in _FAILED_FROM:
                for inst in [i for i in alive if i.node.abnormal]:
                    inst.state = _FAILED_FROM[state]
                    alive.remove(inst)
                    failed.append(inst)
        return failed
