"""The condition (and Event) reasons emrops chooses itself, in one enum.

``status.conditions[].reason`` also carries two kinds of reason emrops does not choose: the
error table's reasons for EMR error codes (``emrops.acs.codes``: ``NotAuthorized``,
``InvalidParameter``, ...; a test keeps them in this enum too) and the code EMR gives when an
operation fails (``stateChangeReason.code``), which can be anything. So a status' reason is a
``str``, and the controller writes its own through this enum, never as a bare string.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    # The run's own progress.
    PENDING = "Pending"  # accepted; waiting to submit
    QUEUED = "Queued"  # waiting for overlapping runs on the same cluster
    SUBMITTING = "Submitting"  # intent recorded, RunApplicationAction being called
    RUNNING = "Running"  # EMR accepted it; following the operation
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"  # the default reason of a Failed run, and the Event for one
    RERUN_REQUESTED = "RerunRequested"  # a new run was asked for by the annotation
    ACKNOWLEDGED = "Acknowledged"  # a person released an Unknown run from the queue (Event only)
    OPERATION_ENDED = "OperationEnded"  # an operation followed past the deadline ended (Event only)
    SUBMITTED = "Submitted"  # RunApplicationAction accepted (Event only)
    RETRYING = "Retrying"  # an attempt failed without effect and will be retried (Event only)
    PROGRESS = "Progress"  # instances done so far changed (Event only)
    PLANNED = "Planned"  # a suspended run's plan was resolved (Event only)
    APPROVED = "Approved"  # spec.suspend went false: the run may start (Event only)
    WINDOW_OPEN = "WindowOpen"  # spec.notBefore passed: the run may start (Event only)
    # Why a run waits or ended.
    AWAITING_APPROVAL = "AwaitingApproval"  # spec.suspend: waiting for suspend: false
    PLAN_UNAVAILABLE = "PlanUnavailable"  # suspended, but the plan could not be resolved (yet)
    WAITING_FOR_WINDOW = "WaitingForWindow"  # before spec.notBefore
    WINDOW_EXPIRED = "WindowExpired"  # spec.notAfter passed before the run started: nothing ran
    CREDENTIALS_MISSING = "CredentialsMissing"
    TENANCY_DENIED = "TenancyDenied"  # the tenancy policy does not grant this namespace the cluster
    TENANCY_POLICY_INVALID = "TenancyPolicyInvalid"  # the tenancy policy cannot be read: all refused
    INVALID_SPEC = "InvalidSpec"
    OUTCOME_UNKNOWN = "OutcomeUnknown"
    OPERATION_NOT_FOUND = "OperationNotFound"
    OPERATION_FAILED = "OperationFailed"  # EMR's operation FAILED without a reason code
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    HUMAN_PROCESSING = "HumanProcessing"
    # The error table's reasons (emrops.acs.codes), so every reason emrops writes is listed here.
    CONCURRENT_MODIFICATION = "ConcurrentModification"
    THROTTLED = "Throttled"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INVOKE_ECM_ERROR = "InvokeEcmError"
    NOT_AUTHORIZED = "NotAuthorized"
    CREDENTIALS_REJECTED = "CredentialsRejected"
    CLOCK_SKEW = "ClockSkew"
    NONCE_REUSED = "NonceReused"
    INVALID_PARAMETER = "InvalidParameter"
    MISSING_PARAMETER = "MissingParameter"
    CONFLICT_PARAMETERS = "ConflictParameters"
    INVALID_ACTION = "InvalidAction"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    # Client-side failures of a call (emrops.controller.call_errors).
    REQUEST_NOT_SENT = "RequestNotSent"
    SERVER_ERROR = "ServerError"
    API_ERROR = "ApiError"
