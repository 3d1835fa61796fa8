"""The ServiceAction controller: kopf wiring, the run state machine, and what it drives.

docs/design.md describes how these fit together; in short:

- ``machine``: the pure run state machine (no kopf, no httpx, no asyncio, no I/O; an import-linter
  contract keeps it so). ``backoff``, ``progress``, ``queue``, ``labels``, ``call_errors`` and
  ``plan`` are small pure helpers it and the runner use; ``ratelimit`` is the clock-injected
  client-side limiter.
- ``runner``: one worker per active ServiceAction; turns the machine's decisions into status
  writes (``kube.write_status``, the one status writer), EMR calls (``emrops.emr``) and Events.
- ``kube``, ``apiserver``, ``events``: reads of ServiceActions and Secrets and that status writer,
  the aiohttp client to the apiserver beneath them, and Events posted as client-go does.
- ``credentials``, ``tenancy``, ``tenancy_file``: which credentials a worker signs with, and which
  namespaces may act on which clusters with them.
- ``app``: the runtime the handlers share (clients, limiter, metrics, supervisor); no kopf.
- ``handlers``, ``login``, ``cli``: the only modules that import kopf (its handlers; its
  credentials, session and settings; ``emrops run`` and its flags).
- ``leader``, ``health``, ``metrics``, ``settings``: Lease leader election, /healthz and /readyz,
  Prometheus, and the settings from flags and ``EMROPS_*`` variables.

May import ``emrops.api``, ``emrops.emr`` and ``emrops.acs``; only the top-level ``emrops.cli``
imports the controller (lazily, for ``emrops run``).
"""
