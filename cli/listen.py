"""`storyboard listen QUEUE_URL --source S3_PREFIX... --out TARGET`: renders on S3 events.

The listener (`flows/listening.py`) turns the queue's S3 notifications into Prefect events in
a thread beside Prefect's runner, which serves the `on-upload` deployment (started by those
events, once a folder has been quiet for `--settle` seconds) and a `drop-folder` sweep of each
source every `--sweep-interval` seconds, for an event that was lost.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

from cli.commands import EXIT_OK, check_watched_source, location, say, watched_settings
from domain.errors import ConfigurationError

SWEEP_INTERVAL_S = 3600.0


def command_listen(
    queue_url: str,
    sources: list[str],
    target: str,
    config: Path | None,
    backend_name: str | None,
    settle: float | None,
    sweep_interval: float | None,
) -> int:
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    from clients.notifications import NotificationQueue
    from clients.prefect_events import PrefectEvents
    from flows.deployments import check_settle, listened_deployments
    from flows.listening import ListenedSource, Listener
    from flows.runtime import quiet_prefect_console

    listened = [ListenedSource.parse(source) for source in sources]
    if settle is not None:
        check_settle(settle)
    if not PREFECT_API_URL.value():
        raise ConfigurationError(
            "storyboard listen needs a Prefect server for its events and trigger: "
            "set PREFECT_API_URL (e.g. to `prefect server start`'s)"
        )
    for source in listened[1:]:
        check_watched_source(source.uri, target)
    settings, backend = watched_settings(listened[0].uri, target, config, backend_name)
    queue = NotificationQueue(queue_url)
    queue.check()
    settle_s = settings.watch.settle_s if settle is None else settle
    sweep_s = sweep_interval or SWEEP_INTERVAL_S
    deployments = listened_deployments(
        settings=settings,
        backend=backend,
        sources=[source.uri for source in listened],
        target=location(target),
        settle_s=settle_s,
        sweep_interval_s=sweep_s,
    )
    quiet_prefect_console()
    stop = threading.Event()
    listener = Listener(queue, PrefectEvents(), listened, say)
    threading.Thread(target=listener.listen, args=(stop,), name="listen", daemon=True).start()
    warnings.filterwarnings("ignore", "coroutine 'Runner.astop' was never awaited", RuntimeWarning)
    say(
        f"listening to {queue_url} for {', '.join(source.uri for source in listened)}: "
        f"a folder renders {settle_s:g} s after its last change; sweeps every {sweep_s:g} s "
        "(Ctrl-C stops)"
    )
    try:
        serve(*deployments)
    finally:
        stop.set()
    return EXIT_OK
