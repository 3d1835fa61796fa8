"""A deterministic simulation of the controller (issue 9, "Build 2").

The real ``Supervisor``/``Worker``, state machine, queue, rate limiter and metrics run on a virtual
clock against an in-memory apiserver and an in-memory EMR; replicas are started, killed and
stopped, users create, annotate, relabel and delete ServiceActions, and invariants are checked
after every server-side step. ``world.run_seed(seed)`` runs one seed; see README.md.
"""
