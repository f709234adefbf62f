"""The local cache stays in bounds: least recently used first, down to a cap or an age, what a
running render holds kept, paid results only when asked; a re-run of the newest storyboard
after a prune still costs nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from cli.commands import command_cache_prune
from clients.cache import ContentCache
from clients.cache_pruning import GIGABYTE, cache_entries, holding, prune
from domain.errors import ConfigurationError
from tasks.assembly.store import AssemblyStore
from tests.helpers import DEMO_DIR, assert_clean, run_cli, share_readings

DAY = 86_400.0


def stored(store: AssemblyStore, key: str, size: int, age_s: float) -> Path:
    path = store.path("segments", key, ".mp4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    used = time.time() - age_s
    os.utime(path, (used, used))
    return path


def test_the_least_recently_used_go_first_down_to_the_cap(tmp_path: Path) -> None:
    store = AssemblyStore(tmp_path / "assembly")
    old, middle, new = (
        stored(store, key * 8, 1000, age) for key, age in (("a", 30), ("b", 20), ("c", 10))
    )
    assert store.find("segments", "a" * 8, ".mp4") == old, "a hit is a use"
    report = prune(tmp_path, max_bytes=2000)
    assert (report.removed, report.freed_bytes, report.kept_bytes) == (1, 1000, 2000)
    assert old.exists() and not middle.exists() and new.exists()
    assert prune(tmp_path, keep_days=1).removed == 0
    stored(store, "d" * 8, 500, 3 * DAY)
    assert prune(tmp_path, keep_days=2).freed_bytes == 500


def test_paid_results_go_only_when_asked_and_nothing_a_render_holds(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    image = cache.put_file("images", "f" * 64, "image.png", b"paid" * 100)
    os.utime(image, (time.time() - DAY, time.time() - DAY))
    store = AssemblyStore(tmp_path / "assembly")
    stored(store, "e" * 8, 1000, DAY)
    assert prune(tmp_path, max_bytes=0).removed == 1 and image.exists()
    with holding(tmp_path):
        time.sleep(0.01)
        in_use = stored(store, "g" * 8, 1000, 0)
        report = prune(tmp_path, max_bytes=0, include_generated=True)
    assert in_use.exists() and report.held == 1, "what a running render used is kept"
    assert not image.exists() and not image.parent.exists()
    assert prune(tmp_path, max_bytes=0).removed == 1, "once the render is done, it may go"


def test_a_dead_renders_hold_does_not_keep_anything(tmp_path: Path) -> None:
    store = AssemblyStore(tmp_path / "assembly")
    (tmp_path / ".holds").mkdir(parents=True)
    beyond_every_pid = 2**22  # Linux's largest pid_max
    body = {"host": socket.gethostname(), "pid": beyond_every_pid, "started": 0}
    (tmp_path / ".holds" / "gone.json").write_text(json.dumps(body))
    stored(store, "h" * 8, 1000, 10)
    assert prune(tmp_path, max_bytes=0).removed == 1
    assert not (tmp_path / ".holds" / "gone.json").exists()


def render(name: str, demo: str, tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    source = tmp_path / name
    source.mkdir(exist_ok=True)
    shutil.copy(DEMO_DIR / demo, source / demo)
    config = tmp_path / "small.yaml"
    config.write_text("assembly: {width: 160, height: 90, fps: 8}\n")
    target = tmp_path / f"out-{name}"
    result = run_cli(
        ["run", str(source), "--out", str(target), "--config", str(config)], env, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert_clean(result)
    report: dict[str, object] = json.loads((target / "run.json").read_text())
    return report


def test_storyboard_cache_prune_keeps_the_newest_storyboard_free_to_re_run(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    cache = share_readings(tmp_path / "cache")
    env = {**cli_env, "STORYBOARD_CACHE_DIR": str(cache)}
    first = render("older", "night.ogg", tmp_path, env)
    assert first["cache"]["added_mb"] > 0  # type: ignore[index]
    older = {entry.path for entry in cache_entries(cache)}
    time.sleep(0.05)
    newest_began = time.time()
    time.sleep(0.05)
    render("newest", "dawn.ogg", tmp_path, env)
    newest = sum(e.size for e in cache_entries(cache) if e.last_used >= newest_began)
    cap = f"{(newest + 1) / GIGABYTE:.12f}"
    pruned = run_cli(["cache", "prune", "--max-gb", cap], env, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert "removed" in pruned.stdout and sum(e.size for e in cache_entries(cache)) <= newest + 1
    assert older and all(e.last_used >= newest_began for e in cache_entries(cache)), (
        "only what the older storyboard alone used went"
    )
    again = render("newest", "dawn.ogg", tmp_path, env)
    assert again["assembly"]["segments_encoded"] == 0, "the newest storyboard costs nothing"  # type: ignore[index]
    assert again["assembly"]["narration_chunks_encoded"] == 0  # type: ignore[index]


def test_a_negative_cap_or_age_is_refused(tmp_path: Path) -> None:
    for cap, days in ((-1.0, None), (None, -2.0)):
        with pytest.raises(ConfigurationError, match="must not be negative"):
            command_cache_prune(None, keep_days=days, max_gb=cap, include_generated=False)


def test_work_folders_are_not_entries_and_may_go_while_the_cache_is_measured(
    tmp_path: Path,
) -> None:
    """A run's work folder in the store (`.narration-…`, `.make-…`) is neither measured nor
    pruned, and one that another thread removes while the cache is listed is skipped."""
    cache = tmp_path / "cache"
    store = AssemblyStore(cache / "assembly")
    kept = stored(store, "a" * 64, 1000, age_s=0)
    work = store.root / ".narration-held"
    work.mkdir()
    (work / "chunk_0.m4a").write_bytes(b"x" * 5000)
    assert [entry.path for entry in cache_entries(cache, include_generated=True)] == [kept]

    done = threading.Event()

    def come_and_go() -> None:
        count = 0
        while not done.is_set():
            folder = store.root / f".narration-{count % 3}" / "deep"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "chunk.m4a").write_bytes(b"y")
            shutil.rmtree(folder.parent)
            count += 1

    churn = threading.Thread(target=come_and_go)
    churn.start()
    try:
        for _ in range(300):
            assert [entry.path for entry in cache_entries(cache)] == [kept]
    finally:
        done.set()
        churn.join()
