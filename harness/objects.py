"""What the tests and the bench create and read: the demo cluster's names, ServiceAction builders,
phases and conditions, and readers of the emulator's calls log.

The demo constants are the project's contract (docs/emulator.md): the cluster the emulator serves
when no scenario is given, its access key, and the credentials Secret the examples refer to. They
are written out here, not imported from the emulator, so that a test using them also checks that
the emulator keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: The repository's examples/ (tests apply them as a user would).
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

REGION = "cn-hangzhou"
CLUSTER_ID = "c-8a3f2e1d9b7c6a50"
CLUSTER_NAME = "emrops-demo"
ACCESS_KEY_ID = "emrops-demo"
ACCESS_KEY_SECRET = "emrops-demo-secret"
#: The credentials Secret of examples/credentials-secret.yaml (keys accessKeyId, accessKeySecret).
SECRET_NAME = "emrops-demo-credentials"

MASTER = "i-bp1emrdemo00master1"
CORES = [f"i-bp1emrdemo000core{i}" for i in range(1, 5)]
TASKS = [f"i-bp1emrdemo000task{i}" for i in range(1, 3)]
#: Every (application, component) of the demo cluster -> the node ids that run it.
INSTANCES: dict[tuple[str, str], list[str]] = {
    ("HDFS", "NameNode"): [MASTER],
    ("HDFS", "DataNode"): CORES,
    ("YARN", "ResourceManager"): [MASTER],
    ("YARN", "NodeManager"): CORES + TASKS,
    ("HIVE", "HiveMetastore"): [MASTER],
    ("HIVE", "HiveServer2"): [MASTER],
    ("SPARK", "SparkHistoryServer"): [MASTER],
    ("ZOOKEEPER", "ZooKeeper"): [MASTER, CORES[0], CORES[1]],
}
#: (application, component, node) triples of one demo-layout cluster that never overlap
#: (NodeManager on six nodes, DataNode on four): up to ten actions on them run at once.
DISJOINT_INSTANCES: list[tuple[str, str, str]] = [("YARN", "NodeManager", n) for n in CORES + TASKS] + [
    ("HDFS", "DataNode", n) for n in CORES
]

GROUP, VERSION, PLURAL = "emrops.io", "v1alpha1", "serviceactions"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Unknown"})
IN_FLIGHT_PHASES = frozenset({"Submitting", "Running"})
ACKNOWLEDGED_AT = "emrops.io/acknowledged-at"
RUN_ACTION = "RunApplicationAction"
GET_OPERATION = "GetOperation"


# --- builders --------------------------------------------------------------------------------


def service_action(name: str = "sa", **spec_overrides: Any) -> dict[str, Any]:
    """A valid ServiceAction restarting the demo cluster's DataNodes, with ``spec`` keys replaced.

    The base holds only what the CRD requires plus the demo credentials Secret: no rolling
    options, no description. A test passes the fields its check is about; an override of None
    removes the key (``credentialsSecretRef=None``: the operator's own identity). Every call
    builds new dicts, so a test may mutate what it gets.
    """
    spec: dict[str, Any] = {
        "regionId": REGION,
        "clusterId": CLUSTER_ID,
        "actionName": "restart",
        "componentInstanceSelector": {
            "runActionScope": "COMPONENT",
            "components": [{"applicationName": "HDFS", "componentName": "DataNode"}],
        },
        "credentialsSecretRef": {"name": SECRET_NAME},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServiceAction",
        "metadata": {"name": name},
        "spec": {key: value for key, value in spec.items() if value is not None},
    }


def component_restart(
    name: str, app: str, component: str, secret: str | None = None, **spec: Any
) -> dict[str, Any]:
    """``service_action`` restarting ``app``'s ``component`` on all its nodes, described by its name,
    with the credentials Secret ``secret`` (None: the operator's own identity)."""
    return service_action(
        name,
        componentInstanceSelector=component_scope(app, component),
        description=name,
        credentialsSecretRef={"name": secret} if secret else None,
        **spec,
    )


def app_scope(app: str) -> dict[str, Any]:
    """A componentInstanceSelector for a whole application."""
    return {"runActionScope": "APPLICATION", "applicationName": app}


def component_scope(app: str, *components: str) -> dict[str, Any]:
    """A componentInstanceSelector for components of one application, on all their nodes."""
    return {
        "runActionScope": "COMPONENT",
        "applicationName": app,
        "components": [{"applicationName": app, "componentName": c} for c in components],
    }


def instance_scope(app: str, component: str, *nodes: str) -> dict[str, Any]:
    """A componentInstanceSelector for one component on the given node ids."""
    return {
        "runActionScope": "COMPONENT_INSTANCE",
        "applicationName": app,
        "componentInstances": [
            {"applicationName": app, "componentName": component, "nodeId": n} for n in nodes
        ],
    }


def marker(name: str) -> str:
    """The tag a test puts into spec.description so the calls log can be tied to its object."""
    return f"[svcact:{name}]"


def tagged_action(name: str, action: str, selector: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """``service_action`` with ``action`` on ``selector``, its description tagged with ``marker(name)``
    so its calls can be found in the emulator's log."""
    description = f"{spec.pop('description', 'emrops test')} {marker(name)}"
    return service_action(
        name, actionName=action, componentInstanceSelector=selector, **spec, description=description
    )


def with_labels(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    """``obj`` with ``metadata.labels`` set."""
    return {**obj, "metadata": {**obj["metadata"], "labels": dict(labels)}}


def secret_manifest(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    """An Opaque Secret with ``data`` as its stringData."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": dict(data),
    }


# --- reading objects -------------------------------------------------------------------------


def phase(obj: Mapping[str, Any]) -> str | None:
    status = obj.get("status") or {}
    return status.get("phase") if isinstance(status, dict) else None


def condition(obj_or_status: dict[str, Any], ctype: str) -> dict[str, Any]:
    status = obj_or_status.get("status", obj_or_status) or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def summarize(obj: dict[str, Any]) -> dict[str, Any]:
    """What a failed wait shows of an object: its status, conditions folded."""
    st = obj.get("status") or {}
    return {
        "phase": st.get("phase"),
        "message": st.get("message"),
        "attempts": st.get("attempts"),
        "lastError": st.get("lastError"),
        "operationId": st.get("operationId"),
        "waitingFor": st.get("waitingFor"),
        "conditions": {
            c.get("type"): [c.get("status"), c.get("reason"), c.get("message")]
            for c in st.get("conditions") or []
        },
    }


def summaries(objs: Mapping[str, dict[str, Any]]) -> str:
    return json.dumps({n: summarize(o) for n, o in objs.items()}, indent=1)


# --- the emulator's calls log ------------------------------------------------------------------
# GET /_emulator/calls -> {"calls": [...]}, one record per API call received: seq, time, action,
# params (flat, as sent: "ComponentInstanceSelector.RunActionScope"), access_key_id, outcome ("OK"
# or the EMR error code), http_status, operation_id (set when the call created an operation),
# request_id, signature, dropped (connection aborted, no answer).


def call_action(call: Mapping[str, Any]) -> str:
    return str(call.get("action") or "")


def call_outcome(call: Mapping[str, Any]) -> str:
    """ "OK" when the emulator served the call (even if it then dropped the answer), else the code."""
    return str(call.get("outcome") or "")


def call_param(call: Mapping[str, Any], name: str) -> Any:
    """A parameter by its flat API name: ``Description``, ``ComponentInstanceSelector.RunActionScope``."""
    return (call.get("params") or {}).get(name)


def accepted(call: Mapping[str, Any]) -> bool:
    """EMR started an operation for this call (whether or not the caller got the answer)."""
    return call_outcome(call) == "OK" and bool(call.get("operation_id"))


def call_ok(call: Mapping[str, Any]) -> bool:
    """EMR performed the call: a RunApplicationAction was ``accepted``; any other call was answered OK
    and the answer delivered."""
    if call_action(call) == RUN_ACTION:
        return accepted(call)
    return call_outcome(call) == "OK" and not call.get("dropped", False)


def accepted_by_description(calls: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per Description: the RunApplicationAction calls EMR ``accepted``. A call dropped *after* it was
    applied counts (EMR acted; the client never heard); one refused or dropped before does not."""
    counts: dict[str, int] = {}
    for call in calls:
        if call_action(call) == RUN_ACTION and accepted(call):
            desc = str(call_param(call, "Description") or "")
            counts[desc] = counts.get(desc, 0) + 1
    return counts


class PhaseLog:
    """Every phase each object was seen in, in order, and every moment two of them were in flight
    (Submitting or Running) at once. Use ``record`` as (or inside) a ``Kube.wait_until`` check."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.phases: dict[str, list[str]] = {n: [] for n in self.names}
        self.waiting_for: dict[str, set[str]] = {n: set() for n in self.names}
        self.together: list[dict[str, str]] = []

    def record(self, objs: dict[str, dict[str, Any]]) -> None:
        in_flight: dict[str, str] = {}
        for name in self.names:
            st = objs.get(name, {}).get("status") or {}
            now = st.get("phase")
            seen = self.phases[name]
            if now and (not seen or seen[-1] != now):
                seen.append(now)
            if now == "Queued":
                self.waiting_for[name].update(st.get("waitingFor") or [])
            if now in IN_FLIGHT_PHASES:
                in_flight[name] = str(now)
        if len(in_flight) > 1:
            self.together.append(in_flight)

    def all_in(self, objs: dict[str, dict[str, Any]], phases: Iterable[str] = TERMINAL_PHASES) -> bool:
        """``record``, then whether every object is in one of ``phases``."""
        self.record(objs)
        wanted = set(phases)
        return all(phase(objs.get(n, {})) in wanted for n in self.names)
