"""The generation stage's content cache: pay once, across threads, runs and processes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from clients.cache import ContentCache
from configs.settings import GenerationSettings
from domain.errors import ContentFilteredError
from domain.media import ImageRequest
from tasks.generate import generate_media
from testkit.fakes.backends import CountingBackend

SETTINGS = GenerationSettings()


def _request(prompt: str = "a lion", seed: int = 5, **changes: Any) -> ImageRequest:
    fields: dict[str, Any] = dict(
        prompt=prompt,
        negative_prompt="",
        model="sdxl",
        seed=seed,
        cfg_scale=5.0,
        sampler="DDIM",
        steps=25,
        label="Scene 1",
    )
    fields.update(changes)
    return ImageRequest(**fields)


def test_a_second_run_pays_nothing(tmp_path: Path) -> None:
    backend, cache = CountingBackend(), ContentCache(tmp_path)
    first = generate_media(backend, cache, _request(), SETTINGS)
    second = generate_media(backend, ContentCache(tmp_path), _request(), SETTINGS)
    assert (backend.images, backend.clips) == (1, 1)
    assert (first.api_calls, first.cache_hits) == (2, 0)
    assert (second.api_calls, second.cache_hits) == (0, 2)
    assert second.clip_path.read_bytes() == first.clip_path.read_bytes()


@pytest.mark.parametrize(
    "change", [{"prompt": "a tiger"}, {"seed": 6}, {"model": "flux.1-dev"}, {"steps": 30}]
)
def test_anything_that_changes_the_image_misses_the_cache(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    backend, cache = CountingBackend(), ContentCache(tmp_path)
    generate_media(backend, cache, _request(), SETTINGS)
    generate_media(backend, cache, _request(**change), SETTINGS)
    assert backend.images == 2


def test_refresh_regenerates(tmp_path: Path) -> None:
    backend, cache = CountingBackend(), ContentCache(tmp_path)
    generate_media(backend, cache, _request(), SETTINGS)
    generate_media(backend, cache, _request(), SETTINGS, refresh=True)
    assert (backend.images, backend.clips) == (2, 2)


def test_concurrent_runs_of_one_scene_pay_once(tmp_path: Path) -> None:
    backend = CountingBackend(delay_s=0.5)
    results = []

    def run() -> None:
        results.append(generate_media(backend, ContentCache(tmp_path), _request(), SETTINGS))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (backend.images, backend.clips) == (1, 1)
    # Which run pays for the image and which for the clip depends on timing; together, once.
    assert sum(result.api_calls for result in results) == 2
    assert sum(result.cache_hits for result in results) == 4


def test_a_filtered_prompt_is_remembered_until_refresh(tmp_path: Path) -> None:
    backend, cache = CountingBackend(filtered="forbidden"), ContentCache(tmp_path)
    for _ in range(2):
        with pytest.raises(ContentFilteredError):
            generate_media(backend, cache, _request("something forbidden"), SETTINGS)
    assert backend.images == 1 and backend.clips == 0
    with pytest.raises(ContentFilteredError):
        generate_media(backend, cache, _request("something forbidden"), SETTINGS, refresh=True)
    assert backend.images == 2


def test_a_half_written_entry_is_never_taken_for_a_result(tmp_path: Path) -> None:
    backend, cache = CountingBackend(), ContentCache(tmp_path)
    media = generate_media(backend, cache, _request(), SETTINGS)
    (media.image_path.parent / "entry.json").write_text('{"file": "image.png", "se')
    again = generate_media(backend, cache, _request(), SETTINGS)
    assert backend.images == 2 and again.image_path.is_file()
