"""The ServiceAction controller: kopf wiring, the run state machine, and what it drives.

docs/design.md describes how these fit together; in short:

- ``machine``: the pure run state machine (no kopf, no httpx, no asyncio, no I/O; an import-linter
  contract keeps it so). ``backoff``, ``progress``, ``queue``, ``labels`` and ``calls`` are small
  pure helpers it and the runner use; ``ratelimit`` is the clock-injected client-side limiter.
- ``runner``: one worker per active ServiceAction; turns the machine's decisions into status
  writes (``kube.write_status``, the one status writer), EMR calls (``emrops.emr``) and Events.
- ``kube``: reads of ServiceActions and Secrets, and that status writer; ``credentials``: which
  credentials a worker signs with.
- ``apiserver``: the operator's own httpx client to the apiserver (kopf's credentials, one
  bounded pool); ``events``: Kubernetes Events as client-go's recorder posts them; ``login``:
  kopf's credentials, its bounded session and its settings.
- ``app``: the runtime the handlers share (clients, limiter, metrics, supervisor).
- ``handlers``: the only module that registers kopf handlers; each handler is a few lines.
- ``leader``, ``health``, ``metrics``: Lease leader election, /healthz and /readyz, Prometheus.
- ``settings`` and ``cli``: ``emrops run``'s flags and ``EMROPS_*`` environment.

May import ``emrops.api``, ``emrops.emr`` and ``emrops.acs``; only the top-level ``emrops.cli``
imports the controller (lazily, for ``emrops run``).
"""
