"""What the tests and the bench create: the demo cluster's names and the ServiceAction builder.

The demo constants are the project's contract (docs/emulator.md): the cluster the emulator serves
when no scenario is given, its access key, and the credentials Secret the examples refer to. They
are written out here, not imported from the emulator, so that a test using them also checks that
the emulator keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    with the credentials Secret ``secret`` (None: the operator's own identity). The selector names
    no application of its own (unlike ``component_scope``), as the base's does."""
    components = [{"applicationName": app, "componentName": component}]
    selector = {"runActionScope": "COMPONENT", "components": components}
    return service_action(
        name,
        componentInstanceSelector=selector,
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


def rolling_datanodes(name: str, interval: int) -> dict[str, Any]:
    """``tagged_action``: a rolling restart of the demo cluster's four DataNodes, one per batch,
    ``interval`` emulated seconds apart, stopping at a failed batch (FAILED_BLOCK)."""
    return tagged_action(
        name,
        "restart",
        component_scope("HDFS", "DataNode"),
        rollingExecute=True,
        batchSize=1,
        interval=interval,
        executeStrategy="FAILED_BLOCK",
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
