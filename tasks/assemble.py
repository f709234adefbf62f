"""Assemble: every scene, in order, with its narration, into one H.264/AAC storyboard video.

The Prefect task over `tasks.assembly`, which does the work: each scene is rendered into its
own short video-only segment, the segments are joined by stream copy and the narration, built
once as PCM, is muxed in as AAC.
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from configs.settings import AssemblySettings
from domain.scene import TimelineEntry
from tasks.assembly.render import assemble_storyboard
from tasks.assembly.timeline import SceneCut, scene_cut

__all__ = ["SceneCut", "assemble", "scene_cut"]


@task(name="assemble", cache_policy=NO_CACHE)
def assemble(
    cuts: list[SceneCut], settings: AssemblySettings, output: Path, music: Path | None = None
) -> list[TimelineEntry]:
    """Render `cuts` into `output`; returns where each scene sits on the timeline."""
    timeline = assemble_storyboard(cuts, settings, output, music)
    get_run_logger().info("assembled %d scenes into %s", len(cuts), output.name)
    return timeline
