"""What a run shows in the Prefect UI: a progress bar, the manifest table and a summary.

Every text that comes from a file name or a transcript is escaped before it is shown.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from typing import cast
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from domain.report import RunReport
from domain.scene import SceneOutcome

_KEY_UNSAFE = re.compile(r"[^a-z0-9-]+")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def artifact_key(kind: str, storyboard: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = _KEY_UNSAFE.sub("-", storyboard.casefold()).strip("-")[:40] or "storyboard"
    return f"{kind}-{slug}"


def escape_markdown(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))


class Progress:
    """A progress artifact that moves as scene work finishes: sent at most once every
    `interval_s`, so that a storyboard of many cached scenes does not wait on the API."""

    def __init__(self, storyboard: str, steps: int, interval_s: float = 1.0) -> None:
        self.steps = max(1, steps)
        self.done = 0
        self.interval_s = interval_s
        self._sent_at = time.monotonic()
        created = create_progress_artifact(
            progress=0.0,
            key=artifact_key("progress", storyboard),
            description=f"Scene work done for {html.escape(storyboard)}",
        )
        self._id = cast(UUID, created)

    def advance(self, count: int = 1) -> None:
        self.done = min(self.steps, self.done + count)
        if time.monotonic() - self._sent_at >= self.interval_s:
            self._sent_at = time.monotonic()
            update_progress_artifact(self._id, progress=round(100.0 * self.done / self.steps, 1))

    def finish(self) -> None:
        self.done = self.steps
        update_progress_artifact(self._id, progress=100.0)


def publish_run_artifacts(
    outcomes: Sequence[SceneOutcome], report: RunReport, video: str, manifest: str
) -> None:
    rows = [
        {
            "order": outcome.recording.order,
            "scene_id": html.escape(outcome.scene_id),
            "status": outcome.status.value,
            "language": outcome.transcript.language if outcome.transcript else "",
            "transcript": html.escape(outcome.transcript.text if outcome.transcript else ""),
            "prompt": html.escape(outcome.prompt),
            "seed": "" if outcome.seed is None else str(outcome.seed),
            "error": html.escape(outcome.error),
        }
        for outcome in outcomes
    ]
    create_table_artifact(
        table=rows,
        key=artifact_key("manifest", report.storyboard),
        description=f"Scenes of {html.escape(report.title)}",
    )
    counts = ", ".join(f"{n} {status}" for status, n in report.scenes.items() if n) or "none"
    stages = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in report.stages.items())
    draft = (
        "\n\n**Draft backend**: panels are drawn offline, not generated." if report.draft else ""
    )
    summary = (
        f"# {escape_markdown(report.title)}\n\n"
        f"Scenes: {counts}. Backend `{report.backend}`, Whisper `{report.model}`, "
        f"{report.api_calls} API calls, {report.cache_hits} cache hits.{draft}\n\n"
        f"- Video: [{escape_markdown(video)}]({html.escape(video, quote=True)})\n"
        f"- Manifest: [{escape_markdown(manifest)}]({html.escape(manifest, quote=True)})\n"
        f"- Source: {escape_markdown(report.source)}\n\n"
        f"Stages: {stages}\n"
    )
    create_markdown_artifact(
        markdown=summary,
        key=artifact_key("summary", report.storyboard),
        description=f"Outputs of {html.escape(report.title)}",
    )
