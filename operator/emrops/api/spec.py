"""The ServiceAction spec, read from the object's ``spec`` dict, and its API request.

Field names are Python-style with the CRD's camelCase names as aliases, so
``ServiceActionSpec.model_validate(body["spec"])`` reads what ``kubectl apply`` stored and
``to_request()`` gives the ``RunApplicationAction`` request, parameter for parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from emrops.emr.models import (
    ActionName,
    ComponentInstanceRef,
    ComponentInstanceSelector,
    ComponentRef,
    ExecuteStrategy,
    RunActionScope,
    RunApplicationActionRequest,
)


class _SpecModel(BaseModel):
    # Unknown fields are ignored: an older operator must not choke on a newer CRD's fields.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class ComponentSpec(_SpecModel):
    application_name: str
    component_name: str


class ComponentInstanceSpec(_SpecModel):
    application_name: str
    component_name: str
    node_id: str


class SelectorSpec(_SpecModel):
    run_action_scope: RunActionScope
    application_name: str | None = None
    components: tuple[ComponentSpec, ...] = ()
    component_instances: tuple[ComponentInstanceSpec, ...] = ()


class SecretRef(_SpecModel):
    name: str


class ServiceActionSpec(_SpecModel):
    """What the user asked for: one RunApplicationAction call, plus emrops' own knobs."""

    region_id: str
    cluster_id: str
    action_name: ActionName
    component_instance_selector: SelectorSpec
    rolling_execute: bool | None = None
    execute_strategy: ExecuteStrategy | None = None
    interval: int | None = None
    batch_size: int | None = None
    description: str | None = None
    credentials_secret_ref: SecretRef | None = None
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    #: True: resolve the plan into status.plan and wait; setting it false approves the run.
    suspend: bool = False
    #: The run starts no earlier than this (RFC 3339).
    not_before: datetime | None = None
    #: An unstarted run ends WindowExpired at this moment (RFC 3339); a started one is followed.
    not_after: datetime | None = None
    #: Seconds after a Succeeded or Failed run's finishedAt after which emrops deletes the object.
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ServiceActionSpec:
        """The spec of a whole object dict (raises ``pydantic.ValidationError`` when malformed)."""
        return cls.model_validate(body.get("spec") or {})

    def to_request(self) -> RunApplicationActionRequest:
        """The RunApplicationAction request this spec stands for."""
        selector = self.component_instance_selector
        return RunApplicationActionRequest(
            region_id=self.region_id,
            cluster_id=self.cluster_id,
            action_name=self.action_name,
            component_instance_selector=ComponentInstanceSelector(
                run_action_scope=selector.run_action_scope,
                application_name=selector.application_name,
                components=[
                    ComponentRef(application_name=c.application_name, component_name=c.component_name)
                    for c in selector.components
                ]
                or None,
                component_instances=[
                    ComponentInstanceRef(
                        application_name=i.application_name,
                        component_name=i.component_name,
                        node_id=i.node_id,
                    )
                    for i in selector.component_instances
                ]
                or None,
            ),
            rolling_execute=self.rolling_execute,
            execute_strategy=self.execute_strategy,
            interval=self.interval,
            batch_size=self.batch_size,
            description=self.description,
        )
