"""ServiceAction objects in every state, with status rendered by the operator's own code.

The GitOps health checks (Argo CD Lua, Flux CEL, kstatus) are tested against statuses built by
``emrops.api.conditions``, the module the controller writes conditions with, so a change in what
the operator writes shows up here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emrops.api.conditions import with_conditions
from emrops.api.status import Phase, RunStatus

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    """One object and the health every tool should report for it."""

    name: str
    obj: dict[str, Any]
    argocd: str  # Healthy | Progressing | Degraded | Suspended
    cel: str  # Flux with deploy/flux's healthCheckExprs: Current | InProgress | Failed | Unknown
    kstatus: str  # Flux healthChecks without expressions (plain kstatus): Current | InProgress | Failed
    message: str | None = None  # a substring the Argo CD message must contain


def service_action(status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {"name": "restart-datanodes", "namespace": "team-a", "generation": generation},
        "spec": {
            "regionId": "cn-hangzhou",
            "clusterId": "c-8a3f2e1d9b7c6a50",
            "actionName": "restart",
            "componentInstanceSelector": {"runActionScope": "APPLICATION", "applicationName": "HDFS"},
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


def rendered(
    phase: Phase, message: str, *, stalled: bool = False, reason: str | None = None
) -> dict[str, Any]:
    """The status the operator writes for ``phase`` at generation 1."""
    status = RunStatus(phase=phase, message=message, stalled=stalled, reason=reason)
    return with_conditions(status, generation=1, now=NOW).to_dict()


def cases() -> list[Case]:
    running = "batch 2/4: restarting DataNode on core1-2"
    human = "EMR needs a person: node core1-3 did not come back (NodeFailure)"
    failed = "NotAuthorized: You do not have permission to perform this action."
    unknown = "The outcome of RunApplicationAction is unknown (InternalError); check the EMR console"
    suspended = "Suspended: waiting for approval (set spec.suspend: false). Plan: 4 instances in 2 batches"
    scheduled = "Waiting for the window: the run starts at notBefore 2026-01-03T02:00:00Z"
    expired = "The run did not start before notAfter 2026-01-03T04:00:00Z; nothing was sent to EMR"
    stale = rendered(Phase.SUCCEEDED, "done")
    unobserved = {k: v for k, v in rendered(Phase.SUCCEEDED, "done").items() if k != "observedGeneration"}
    in_progress = ("Progressing", "InProgress", "InProgress")
    return [
        # Before emrops writes its first status (at once, on its first look at the object): kstatus
        # has nothing to read and says Current; the CEL expressions error on the missing top-level
        # `status`, which Flux reports as Unknown and keeps waiting on.
        Case("no status", service_action(None), "Progressing", "Unknown", "Current"),
        Case("empty status", service_action({}), "Progressing", "InProgress", "Current"),
        Case("Pending", service_action(rendered(Phase.PENDING, "accepted")), *in_progress),
        Case(
            "Queued",
            service_action(rendered(Phase.QUEUED, "waiting for sa-1")),
            *in_progress,
            "waiting for sa-1",
        ),
        Case("Submitting", service_action(rendered(Phase.SUBMITTING, "calling")), *in_progress),
        Case("Running", service_action(rendered(Phase.RUNNING, running)), *in_progress, running),
        Case(
            "Running, HUMAN_PROCESSING",
            service_action(rendered(Phase.RUNNING, human, stalled=True, reason="HumanProcessing")),
            "Degraded",
            "Failed",
            "Failed",
            human,
        ),
        Case(
            "Succeeded",
            service_action(rendered(Phase.SUCCEEDED, "COMPLETED")),
            "Healthy",
            "Current",
            "Current",
        ),
        Case(
            "Failed",
            service_action(rendered(Phase.FAILED, failed, reason="NotAuthorized")),
            "Degraded",
            "Failed",
            "Failed",
            failed,
        ),
        Case(
            "Unknown",
            service_action(rendered(Phase.UNKNOWN, unknown)),
            "Degraded",
            "Failed",
            "Failed",
            unknown,
        ),
        # At rest on purpose: Argo CD's Suspended; Current for the CEL expressions (Flux does not
        # wait for a person or a clock); plain kstatus reads Ready=False as in progress.
        Case(
            "Suspended",
            service_action(rendered(Phase.SUSPENDED, suspended)),
            "Suspended",
            "Current",
            "InProgress",
            suspended,
        ),
        Case(
            "Scheduled",
            service_action(rendered(Phase.SCHEDULED, scheduled)),
            "Suspended",
            "Current",
            "InProgress",
            scheduled,
        ),
        Case(
            "Failed, WindowExpired",
            service_action(rendered(Phase.FAILED, expired, reason="WindowExpired")),
            "Degraded",
            "Failed",
            "Failed",
            expired,
        ),
        # The user changed something that bumps the generation; emrops has not looked yet.
        Case("stale observedGeneration", service_action(stale, generation=2), *in_progress),
        Case(
            "phase only (no conditions yet)",
            service_action({"observedGeneration": 1, "phase": "Running"}),
            "Progressing",
            "InProgress",
            "Current",
        ),
        # Conditions without observedGeneration say nothing about which spec they describe.
        Case("no observedGeneration", service_action(unobserved), "Progressing", "InProgress", "Current"),
    ]
