"""Names of the ServiceAction resource that every layer agrees on."""

from __future__ import annotations

GROUP = "emrops.io"
VERSION = "v1alpha1"
KIND = "ServiceAction"
PLURAL = "serviceactions"
API_VERSION = f"{GROUP}/{VERSION}"

#: Annotation whose new value asks for one new run of a finished ServiceAction.
RUN_REQUESTED_AT = "emrops.io/run-requested-at"

#: Annotation whose new value releases an Unknown run (or one followed past its deadline) from the
#: cluster's queue, once a person has checked what EMR did.
ACKNOWLEDGED_AT = "emrops.io/acknowledged-at"

#: Most runs kept in ``status.history`` (the CRD's maxItems).
HISTORY_LIMIT = 10

#: Most instances ``status.plan`` lists by name (and most abnormal ones); the counts cover all.
PLAN_LIST_LIMIT = 20
