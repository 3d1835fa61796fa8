"""Tasks that outlive the kopf handler that starts them.

asyncio copies the caller's context variables into every task and every done callback. Inside a
kopf handler that context holds kopf's invocation variables: the cause with the raw watch event
(the whole object as decoded, ``managedFields`` included), the handler's patch, its loggers and
body views. A run's worker started from the ``ServiceAction`` event handler kept all of that for
as long as the run lasted: in a 1,000-object burst the dicts decoded by kopf's watcher were the
largest live site of the heap, nine per run in flight, held through the workers' contexts
(docs/performance.md). So tasks and their callbacks start with an empty context: nothing in the
operator reads a context variable set outside its own task (the apiserver's priority lane, the
one context variable, is set by the task whose requests use it).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def spawn(
    coro: Coroutine[Any, Any, T],
    *,
    name: str,
    done: Callable[[asyncio.Task[T]], object] | None = None,
) -> asyncio.Task[T]:
    """Start ``coro`` as a task with an empty context; ``done`` is called when it ends (also so)."""
    task = asyncio.get_running_loop().create_task(coro, name=name, context=contextvars.Context())
    if done is not None:
        task.add_done_callback(done, context=contextvars.Context())
    return task
