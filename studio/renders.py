"""Re-rendering a storyboard after a change, one render at a time per storyboard.

The interface is small: a `RenderBackend` runs one `RenderJob` to its end. Two implement it,
chosen in one place (`choose_backend`, asked again every `CHOICE_TTL_S`):

- `PrefectRender`: when a Prefect API is configured and its `storyboard/on-demand` deployment
  is being served (status READY), a run of it with `only=[scene ids]`, created with
  `run_deployment(..., timeout=0)` and followed by polling the flow run;
- `LocalRender`: otherwise the studio's own worker, `storyboard run SOURCE --out TARGET
  --only SCENE_ID` in a subprocess (the `storyboard` script beside `sys.executable`).

`RenderService` queues jobs per storyboard: while one renders, the changes that follow are
merged into one next job. Each render holds the watcher's claim on the source's fingerprint
(`clients/lease.py:claim_render`), so a watcher never renders the same change alongside it; when a
watcher holds it, the job waits, and is done once the watcher's render of it is.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from clients.layout import rendered_fingerprint
from clients.lease import Lease, claim_render
from clients.storage import Storage
from flows.watch import storyboard_folders
from studio.catalog import Board, flow_run_url
from studio.config import StudioConfig

DEPLOYMENT = "storyboard/on-demand"
CHOICE_TTL_S = 15.0
CLAIM_WAIT_S = 30 * 60.0
EXIT_PLACEHOLDERS = 3


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass
class RenderJob:
    """One render of a storyboard; its fields are what the status endpoint reports."""

    id: int
    board: Board
    scenes: list[str]
    reason: str
    state: str = "queued"
    """queued, running, done or failed."""
    detail: str = ""
    renderer: str = ""
    submitted_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_status: int | None = None
    error: str | None = None
    flow_run_id: str | None = None

    def as_json(self, prefect_ui: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "scenes": list(self.scenes),
            "reason": self.reason,
            "detail": self.detail,
            "renderer": self.renderer,
            "submitted_at": _iso(self.submitted_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "exit_status": self.exit_status,
            "error": self.error,
            "flow_run_id": self.flow_run_id,
            "flow_run_url": flow_run_url(prefect_ui, self.flow_run_id),
        }


class RenderBackend(Protocol):
    name: str
    label: str
    """What the page says renders this studio's changes."""

    def execute(self, job: RenderJob, fingerprint: str | None) -> None:
        """Render `job` to its end, setting its `state` (done or failed), `detail`,
        `exit_status` and `error`."""
        ...


def storyboard_command() -> list[str]:
    """The `storyboard` command of this very installation."""
    script = Path(sys.executable).with_name("storyboard")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cli.main"]


def last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("storyboard:")]
    return (said or lines or [""])[-1]


class LocalRender:
    name = "local"

    def __init__(self, config: StudioConfig, why: str = "") -> None:
        self.config = config
        self.label = "the studio's own worker (storyboard run --only, in a subprocess)"
        self.label += f": {why}" if why else ""

    def command(self, job: RenderJob, fingerprint: str | None = None) -> list[str]:
        board, config = job.board, self.config
        command = [*storyboard_command(), "run", board.source, "--out", board.target]
        if fingerprint is not None:
            command += ["--source-fingerprint", fingerprint]
        if config.config_file is not None:
            command += ["--config", str(config.config_file)]
        if config.backend:
            command += ["--backend", config.backend]
        if job.scenes and not any(scene.startswith("-") for scene in job.scenes):
            command += ["--only", *job.scenes]
        return command

    def execute(self, job: RenderJob, fingerprint: str | None) -> None:
        job.detail = "storyboard run"
        result = subprocess.run(  # noqa: S603 - our own command, arguments as a list
            self.command(job, fingerprint),
            env=dict(self.config.render_env) if self.config.render_env is not None else None,
            capture_output=True,
            text=True,
            check=False,
        )
        job.exit_status = result.returncode
        if result.returncode in (0, EXIT_PLACEHOLDERS):
            job.state = "done"
            job.detail = "rendered" if result.returncode == 0 else "rendered with placeholders"
        else:
            job.state = "failed"
            job.detail = f"storyboard run exited {result.returncode}"
            job.error = last_error_line(result.stderr + "\n" + result.stdout)[:500]


class PrefectRender:
    name = "prefect"

    def __init__(self, config: StudioConfig, api_url: str, poll_s: float = 2.0) -> None:
        self.config = config
        self.api_url = api_url
        self.poll_s = poll_s
        self.label = f"Prefect: runs of the deployment {DEPLOYMENT} ({api_url})"

    def parameters(self, job: RenderJob, fingerprint: str | None) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "source": job.board.source,
            "target": job.board.target,
            "only": list(job.scenes),
            "source_fingerprint": fingerprint,
        }
        if self.config.backend:
            parameters["backend"] = self.config.backend
        if self.config.config_file is not None:
            from configs.settings import load_settings

            parameters["settings"] = load_settings(self.config.config_file).model_dump(mode="json")
        return parameters

    def execute(self, job: RenderJob, fingerprint: str | None) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            created = cast(
                FlowRun,
                run_deployment(
                    DEPLOYMENT,
                    parameters=self.parameters(job, fingerprint),
                    timeout=0,
                    as_subflow=False,
                ),
            )
            job.flow_run_id = str(created.id)
            while True:
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(created.id).state
                job.detail = str(state.name) if state else "Scheduled"
                if state is not None and state.is_final():
                    break
                time.sleep(self.poll_s)
        job.state = "done" if state.is_completed() else "failed"
        if not state.is_completed():
            job.error = str(state.message or state.name)[:500]


def prefect_api_url() -> str | None:
    """The Prefect API this process would use (PREFECT_API_URL, or the Prefect profile)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def choose_backend(config: StudioConfig, api_url: str | None) -> RenderBackend:
    """The one place the renderer is chosen: Prefect when `storyboard/on-demand` is served
    there, else the studio's own worker (saying why)."""
    if not api_url:
        return LocalRender(config, "PREFECT_API_URL is not set")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        with (
            temporary_settings(updates={PREFECT_API_URL: api_url}),
            get_client(sync_client=True, httpx_settings={"timeout": 5.0}) as client,
        ):
            deployment = client.read_deployment_by_name(DEPLOYMENT)
    except ObjectNotFound:
        return LocalRender(config, f"no deployment {DEPLOYMENT} on the Prefect server")
    except Exception as exc:  # any failure to ask: the studio renders by itself
        return LocalRender(config, f"the Prefect server did not answer ({type(exc).__name__})")
    if deployment.status != DeploymentStatus.READY:
        return LocalRender(config, f"{DEPLOYMENT} is not being served")
    return PrefectRender(config, api_url)


def source_fingerprint(source: Storage) -> str | None:
    """The fingerprint the watcher gives the storyboard's inputs now."""
    folders, _ = storyboard_folders(source.list())
    return next((folder.fingerprint for folder in folders if folder.path == ""), None)


@dataclass
class _Queue:
    running: RenderJob | None = None
    pending: RenderJob | None = None
    last: RenderJob | None = None


class RenderService:
    """Render jobs per storyboard, one at a time, on the chosen backend."""

    def __init__(
        self,
        config: StudioConfig,
        choose: Callable[[], RenderBackend] | None = None,
        claim_poll_s: float = 2.0,
    ) -> None:
        self.config = config
        self._choose = choose or (lambda: choose_backend(config, prefect_api_url()))
        self._chosen: tuple[float, RenderBackend] | None = None
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self._ids = 0
        self.claim_poll_s = claim_poll_s

    def backend(self) -> RenderBackend:
        with self._lock:
            chosen = self._chosen
        if chosen is None or time.monotonic() - chosen[0] > CHOICE_TTL_S:
            chosen = (time.monotonic(), self._choose())
            with self._lock:
                self._chosen = chosen
        return chosen[1]

    def submit(self, board: Board, scenes: list[str], reason: str) -> RenderJob:
        """Queue a render of `board` refreshing `scenes`; merged into the job already waiting."""
        with self._lock:
            queue = self._queues.setdefault(board.path, _Queue())
            if queue.pending is not None:
                job = queue.pending
                job.scenes = list(dict.fromkeys([*job.scenes, *scenes]))
                job.reason = f"{job.reason}; {reason}"
                return job
            self._ids += 1
            job = RenderJob(self._ids, board, list(scenes), reason)
            if queue.running is None:
                queue.running = job
                threading.Thread(target=self._work, args=(queue,), daemon=True).start()
            else:
                queue.pending = job
            return job

    def status(self, board: Board) -> dict[str, Any]:
        backend = self.backend()
        with self._lock:
            queue = self._queues.get(board.path, _Queue())
            jobs = [job for job in (queue.last, queue.running, queue.pending) if job is not None]
            busy = queue.running is not None or queue.pending is not None
            listed = [job.as_json(self.config.prefect_ui) for job in jobs]
        return {
            "renderer": backend.name,
            "renderer_label": backend.label,
            "busy": busy,
            "jobs": listed,
        }

    def _work(self, queue: _Queue) -> None:
        while True:
            with self._lock:
                job = queue.running
            if job is None:
                return
            self._run(job)
            with self._lock:
                queue.last, queue.running, queue.pending = job, queue.pending, None

    def _run(self, job: RenderJob) -> None:
        backend = self.backend()
        job.renderer, job.state, job.started_at = backend.name, "running", _now()
        try:
            self._claimed(backend, job)
        except Exception as exc:  # a render that cannot run is a failed job, not a dead worker
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
        job.finished_at = _now()

    def _claimed(self, backend: RenderBackend, job: RenderJob) -> None:
        target = job.board.target_storage()
        fingerprint = source_fingerprint(job.board.source_storage())
        if fingerprint is None:
            backend.execute(job, None)
            return
        lease = self._wait_for_claim(job, target, fingerprint)
        if lease is None:
            job.state, job.detail = "done", "rendered by the watcher"
            return
        with lease.held():
            backend.execute(job, fingerprint)

    def _wait_for_claim(self, job: RenderJob, target: Storage, fingerprint: str) -> Lease | None:
        """The watcher's claim on `fingerprint`, once free; None when the watcher rendered it."""
        deadline = time.monotonic() + CLAIM_WAIT_S
        while (lease := claim_render(target, fingerprint)) is None:
            if rendered_fingerprint(target) == fingerprint:
                return None
            if time.monotonic() > deadline:
                raise TimeoutError("the watcher's claim on this change was held too long")
            job.detail = "waiting: the watcher is rendering this change"
            time.sleep(self.claim_poll_s)
        return lease
