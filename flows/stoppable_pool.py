"""The thread pool a command-line run's tasks use, which a stop does not wait for.

Prefect's thread pool waits, as its flow ends, for every task in flight; a task blocked in a
call that cannot be interrupted (a poll the gateway holds open for up to a minute) would hold
a stopped run until the command's grace period killed it. Once the command is told to stop
(`clients/stopping.py`), this pool lets such threads go: they end with the process.
"""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from clients.stopping import STOP_REQUESTED


class StoppableThreadPoolTaskRunner(ThreadPoolTaskRunner):  # type: ignore[type-arg]
    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        executor = self._executor
        if STOP_REQUESTED.is_set() and executor is not None:
            self._executor = None  # so that Prefect's own shutdown, which waits, finds none
            executor.shutdown(wait=False, cancel_futures=True)
        super().__exit__(exc_type, exc_value, traceback)
