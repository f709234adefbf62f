"""Assemble: every scene, in order, with its narration, into one H.264/AAC storyboard video.

The Prefect task over `tasks.assembly`, which does the work: each scene is rendered into its
own short video-only segment, the narration is encoded once as AAC, and both are joined by
stream copy. Segments and narration are kept in the assembly store under the cache folder, so
a re-run encodes only the scenes that changed, and nothing when none did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY
from tasks.assembly.render import Assembly, assemble_storyboard
from tasks.assembly.store import AssemblyStore
from tasks.assembly.timeline import SceneCut, scene_cut

__all__ = ["Assembly", "SceneCut", "assemble", "scene_cut"]


@task(name="assemble", cache_policy=NO_CACHE)
def assemble(
    cuts: list[SceneCut],
    settings: AssemblySettings,
    output: Path,
    cache_dir: Path,
    music: Path | None = None,
    narration_ahead: Callable[[], int] | None = None,
) -> Assembly:
    """Render `cuts` into `output`; where each scene sits, and what was encoded for it.
    `narration_ahead` waits for the narration encoded ahead of the assembly
    (`narration_encoded_ahead`) and says how many pieces it encoded, counted here: the
    pictures start meanwhile."""
    store = AssemblyStore(cache_dir / ASSEMBLY)
    assembly = assemble_storyboard(cuts, settings, output, music, store, narration_ahead)
    narration_pieces_ahead = narration_ahead() if narration_ahead is not None else 0
    if narration_pieces_ahead:
        pieces = assembly.narration_pieces_encoded + narration_pieces_ahead
        assembly = replace(assembly, narration_pieces_encoded=pieces)
    logger = get_run_logger()
    if assembly.encoded_nothing:
        logger.info(
            "assembled %d scenes into %s: nothing changed, nothing re-encoded",
            len(cuts),
            output.name,
        )
    else:
        logger.info(
            "assembled %d scenes into %s: %d encoded, %d reused%s",
            len(cuts),
            output.name,
            assembly.segments_encoded,
            assembly.segments_reused,
            ", narration re-encoded" if assembly.track_encoded else "",
        )
    return assembly
