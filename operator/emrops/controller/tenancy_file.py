"""The tenancy policy from its file, read again whenever the file changes.

The chart mounts the policy from a ConfigMap; the kubelet replaces a mounted ConfigMap's files
(atomically, by swapping a symlink) some time after the ConfigMap changes, so ``current()``
stats the file on every call and parses it again only when its identity (inode, size, mtime)
changed: a grant or a revocation takes effect without restarting the operator. A file that
cannot be read or parsed any more refuses every ServiceAction (``tenancy.unreadable``), and the
error is logged once per version of the file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from emrops.controller import tenancy

logger = logging.getLogger("emrops.controller")


def load(path: str | Path) -> tenancy.TenancyPolicy:
    """The policy in ``path``; raises ``OSError`` or ``tenancy.PolicyInvalid``."""
    return tenancy.parse(Path(path).read_text(encoding="utf-8"), str(path))


def problem(path: str | Path) -> str | None:
    """Why the policy in ``path`` cannot be used, or None: ``emrops run`` refuses to start on one,
    so a broken policy is reported once, at start, rather than by every ServiceAction."""
    try:
        load(path)
    except (OSError, UnicodeDecodeError, tenancy.PolicyInvalid) as exc:
        return f"the tenancy policy {path} (--tenancy-policy / EMROPS_TENANCY_POLICY) cannot be read: {exc}"
    return None


class PolicyFile:
    """``current()``: the policy as the file says now."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._identity: tuple[int, int, int, int] | None = None
        self._policy = tenancy.unreadable(self.path, "not read yet")

    def current(self) -> tenancy.TenancyPolicy:
        try:
            st = os.stat(self.path)
            identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError as exc:
            return self._failed(None, f"{type(exc).__name__}: {exc.strerror or exc}")
        if identity == self._identity:
            return self._policy
        try:
            policy = load(self.path)
        except (OSError, UnicodeDecodeError, tenancy.PolicyInvalid) as exc:
            return self._failed(identity, str(exc))
        if self._identity is not None:
            logger.info("tenancy policy %s changed; now in force", self.path)
        self._identity, self._policy = identity, policy
        return policy

    def _failed(self, identity: tuple[int, int, int, int] | None, error: str) -> tenancy.TenancyPolicy:
        if self._policy.error != error or self._identity != identity:
            logger.error(
                "tenancy policy %s cannot be read (%s): every ServiceAction is refused until it is fixed",
                self.path,
                error,
            )
        self._identity, self._policy = identity, tenancy.unreadable(self.path, error)
        return self._policy
