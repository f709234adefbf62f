"""`python -m flows.server_watchdog PARENT_PID UVICORN_ARGS...`: uvicorn, stopped once the
process that started it is gone.

The temporary Prefect server runs in a session of its own (so Ctrl-C reaches only the run),
which also means nothing ends it when its run is killed outright (`kill -9`, an OOM kill): it
would keep its port and a few hundred megabytes until someone found it. Here a thread looks
once a second whether the server's parent is still the run that started it; when it is not,
the server is stopped as a terminal would stop it (SIGTERM, uvicorn's graceful shutdown), and
ended outright if that takes longer than `GRACE_S`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

CHECK_EVERY_S = 1.0
GRACE_S = 10.0


def _stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(CHECK_EVERY_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(0)


def main() -> None:
    parent, uvicorn_args = int(sys.argv[1]), sys.argv[2:]
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    from uvicorn.main import main as uvicorn_main

    uvicorn_main(uvicorn_args, prog_name="uvicorn")


if __name__ == "__main__":
    main()
