"""The ServiceAction controller: kopf wiring, the run state machine, and what it drives.

- ``machine``: the pure run state machine (no kopf, no httpx, no I/O); ``backoff``, ``ratelimit``,
  ``progress`` and ``queue`` are small pure (or clock-injected) helpers it and the runner use.
- ``runner``: one worker per active ServiceAction; turns the machine's decisions into status
  writes (``status_writer``), EMR calls (``emrops.emr``) and Events.
- ``handlers``: the only module that imports ``kopf.on``; each handler is a few lines.
- ``settings`` and ``cli``: ``emrops run``'s flags and ``EMROPS_*`` environment.

May import ``emrops.api``, ``emrops.emr`` and ``emrops.acs``; nothing imports the controller.
"""
