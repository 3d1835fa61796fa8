"""The one environment every child process of the harness gets (emulator, operator, kopf floor).

A child must never act with the developer's or the CI runner's own cloud identity, nor read their
settings: everything that would let it is removed, whatever the parent's environment holds.

- Every ``ALIBABA_CLOUD_*``, ``ALICLOUD_*`` and ``ALIYUN_*`` variable is dropped: the Alibaba
  credential library (``alibabacloud_credentials``) reads its keys, STS token, RRSA/OIDC role,
  credentials URI, credentials file (``ALIBABA_CLOUD_CREDENTIALS_FILE``) and profile name
  (``ALIBABA_CLOUD_PROFILE``) from ``ALIBABA_CLOUD_*``; the others are the CLI's and Terraform's.
- Every ``EMROPS_*`` variable is dropped, so a developer's own operator settings (an endpoint, a
  log level) never change what a test sees; ``KUBECONFIG`` too, so a child reaches only the
  cluster the caller names.
- ``HOME`` points at an empty directory (``HOMEPATH``/``HOMEDRIVE``, the library's fallbacks, are
  dropped): the library finds its profiles as ``$HOME/.alibabacloud/credentials.ini`` and
  ``$HOME/.aliyun/config.json``, and kubectl its ``$HOME/.kube/config``.
- ``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true``: the chain never asks the ECS metadata service
  (100.100.100.200) for a role; ``ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true``: nor reads the CLI
  profile, wherever it is.

What a caller passes in ``extra`` is set on purpose and wins (a test's own
``ALIBABA_CLOUD_ACCESS_KEY_ID``, an ``EMROPS_LOG_LEVEL``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: Variables with these prefixes never reach a child unless the caller passes them.
SCRUBBED_PREFIXES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_", "EMROPS_")
#: Single variables that never reach a child unless the caller passes them.
SCRUBBED_NAMES = frozenset({"KUBECONFIG", "HOMEPATH", "HOMEDRIVE"})
#: Set in every child: the credential chain's metadata-service and CLI-profile links are off.
CLOSED_LOOKUPS = {
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
}

_empty_home: Path | None = None


def empty_home() -> Path:
    """An empty directory for the children's ``HOME``, one per parent process, removed at exit."""
    global _empty_home
    if _empty_home is None:
        _empty_home = Path(tempfile.mkdtemp(prefix="emrops-child-home-"))
        atexit.register(shutil.rmtree, _empty_home, ignore_errors=True)
    return _empty_home


def child_env(extra: Mapping[str, str] | None = None, *, home: Path | None = None) -> dict[str, str]:
    """This process's environment, scrubbed as the module docstring says, plus ``extra``.

    ``home`` (default: ``empty_home()``) becomes ``HOME``; it is created when missing.
    """
    home = home if home is not None else empty_home()
    home.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(SCRUBBED_PREFIXES) and key not in SCRUBBED_NAMES
    }
    env.update(CLOSED_LOOKUPS, HOME=str(home), PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env
