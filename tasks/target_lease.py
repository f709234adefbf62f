"""One run at a time per TARGET: a lease (clients/lease.py) in the target itself.

Two runs writing one target at once could leave a manifest of one beside the video of the
other. Every run (the command, the watcher's renders, the deployments, the studio's renders)
holds `.storyboard/run.lease` in its target while it works; a second run is refused at once,
naming the run that holds it. A holder killed outright stops renewing it, and the target is
free again a lease lifetime later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from clients.lease import Lease
from clients.storage import open_storage
from domain.errors import TargetBusyError
from domain.layout import TARGET_LEASE
from tasks.preflight import check_target


def _this_run() -> str:
    from prefect.runtime import flow_run

    name = flow_run.get_name()
    return f"(flow run {name})" if name else ""


@contextmanager
def target_held(target: str) -> Iterator[None]:
    """Hold `target`'s lease while the block runs; TargetBusyError when another run holds it."""
    check_target(target)
    lease = Lease(open_storage(target), TARGET_LEASE, label=_this_run())
    if not lease.try_acquire():
        raise TargetBusyError(
            f"{target} is being written by another run ({lease.holder() or 'unknown'}); "
            "wait for it to finish, or choose another --out"
        )
    with lease.held():
        yield
