"""A storyboard opened once per run, in one place, whatever started the run.

`open_storyboard` resolves the source (an S3 prefix is listed and mirrored once), reads its
`storyboard.yaml`, plans its scenes and merges the storyboard's own `settings:` over the run's,
within what a storyboard may set (`configs/storyboard_policy.py`). `storyboard run` and
`transcribe` open the storyboard before Prefect starts, to check it in a second, and hand it
to the flow; a run started any other way (a watcher, a deployment, the studio) is opened by
the flow itself. Either way every step sees the same storyboard under the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from configs.settings import Settings, apply_storyboard_settings
from domain.scene import StoryboardPlan
from tasks.ingest import SourceFolder, plan_of, resolve_source


@dataclass(frozen=True)
class OpenedStoryboard:
    """A storyboard as every step of a run needs it."""

    folder: SourceFolder
    """The source resolved: a folder on this machine (an S3 prefix's mirror) and its spec."""
    plan: StoryboardPlan
    settings: Settings
    """The run's settings with the storyboard's own `settings:` merged over them."""

    @property
    def named_language(self) -> str | None:
        """The language its scenes are read in unless a scene names its own: the storyboard's
        `language:`, else `transcription.language`; None: detected from its first speech."""
        return self.plan.spec.language or self.settings.transcription.language

    def under(self, settings: Settings) -> OpenedStoryboard:
        """This storyboard under a run's `settings`, its own `settings:` merged over them (as
        often as asked: merging again changes nothing)."""
        merged = apply_storyboard_settings(settings, self.plan.spec.settings, self.folder.described)
        return replace(self, settings=merged)


def open_storyboard(source: str, settings: Settings) -> OpenedStoryboard:
    """The storyboard at `source` (a folder, a storyboard file, an S3 prefix) under the run's
    `settings`. ConfigurationError for a source with nothing to render or a `settings:` key a
    storyboard may not set."""
    folder = resolve_source(source, settings.cache_dir)
    return OpenedStoryboard(folder, plan_of(folder), settings).under(settings)


@task(name="ingest", cache_policy=NO_CACHE)
def ingest(source: str, settings: Settings, opened: OpenedStoryboard | None) -> OpenedStoryboard:
    """The run's storyboard: `opened` when the command that started the run opened it, else
    opened here."""
    opened = open_storyboard(source, settings) if opened is None else opened.under(settings)
    plan, logger = opened.plan, get_run_logger()
    logger.info("%s: %d scenes from %s", plan.name, len(plan.recordings), plan.source_uri)
    for warning in plan.warnings:
        logger.warning(warning)
    return opened
