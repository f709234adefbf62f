"""The local cache kept under `cache.max_gb`: what a run added to it, measured before and after,
and the least recently used of what it can make again removed at the end of every run
(`clients/cache_pruning.py`)."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.cache_pruning import GIGABYTE, cache_entries, prune
from configs.settings import CacheSettings

MEGABYTE = 1024**2


def cache_bytes(cache_dir: Path) -> int:
    """Everything the local cache holds but the Whisper models it unpacked."""
    return sum(entry.size for entry in cache_entries(cache_dir, include_generated=True))


@task(name="measure cache", cache_policy=NO_CACHE)
def measure_cache(cache_dir: Path) -> int:
    return cache_bytes(cache_dir)


@task(name="keep cache in bounds", cache_policy=NO_CACHE)
def keep_cache_in_bounds(
    cache_dir: Path, settings: CacheSettings, bytes_before: int
) -> dict[str, float]:
    """What this run added (in MB), and what keeping the cache under its cap removed."""
    entries = cache_entries(cache_dir, include_generated=True)
    added = sum(entry.size for entry in entries) - bytes_before
    logger = get_run_logger()
    summary = {"added_mb": round(added / MEGABYTE, 1), "pruned_mb": 0.0, "pruned_entries": 0.0}
    if settings.max_gb is not None:
        rebuildable = [entry for entry in entries if entry.rebuildable]
        pruned = prune(cache_dir, max_bytes=round(settings.max_gb * GIGABYTE), entries=rebuildable)
        summary |= {
            "pruned_mb": round(pruned.freed_bytes / MEGABYTE, 1),
            "pruned_entries": float(pruned.removed),
        }
        if pruned.removed:
            logger.info("cache over %g GB: %s", settings.max_gb, pruned.summary())
    logger.info("cache: this run added %.1f MB", summary["added_mb"])
    return summary
