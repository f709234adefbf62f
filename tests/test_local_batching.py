"""Scenes that ask for a picture together share one pipeline call; failures reach every scene."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from clients.generation.local.batching import Batcher
from domain.media import ImageRequest, Subject


def _request(seed: int, width: int = 128, subjects: tuple[Subject, ...] = ()) -> ImageRequest:
    return ImageRequest(
        f"scene {seed}", "", "sdxl", seed, 5.0, "DDIM", 4, width, 64, subjects=subjects
    )


def test_requests_that_arrive_together_share_calls_of_at_most_batch_size() -> None:
    calls: list[list[int]] = []
    release = threading.Event()

    def run(requests: list[ImageRequest]) -> list[int]:
        release.wait(5)
        calls.append([r.seed for r in requests])
        return [r.seed * 10 for r in requests]

    batcher = Batcher(run, batch_size=3, gather_s=0.5)
    with ThreadPoolExecutor(7) as pool:
        futures = [pool.submit(batcher.submit, _request(seed)) for seed in range(7)]
        release.set()
        results = [future.result(timeout=10) for future in futures]
    assert results == [seed * 10 for seed in range(7)]
    assert sorted(seed for call in calls for seed in call) == list(range(7))
    assert max(len(call) for call in calls) == 3 and len(calls) < 7


def test_only_requests_of_the_same_shape_and_subjects_share_a_call() -> None:
    calls: list[list[int]] = []

    def run(requests: list[ImageRequest]) -> list[int]:
        calls.append([r.seed for r in requests])
        return [r.seed for r in requests]

    batcher = Batcher(run, batch_size=8, gather_s=0.5)
    lora = (Subject("lora.safetensors", 1.0, "sks"),)
    requests = [_request(1), _request(2, width=256), _request(3, subjects=lora), _request(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(batcher.submit, requests))
    assert results == [1, 2, 3, 4]
    assert all(len({requests[s - 1].width for s in call}) == 1 for call in calls)
    assert [1, 4] in calls or [4, 1] in calls or len(calls) == 4


def test_a_failed_call_is_raised_to_every_scene_in_it_and_the_next_call_still_runs() -> None:
    failing = threading.Event()
    failing.set()

    def run(requests: list[ImageRequest]) -> list[int]:
        if failing.is_set():
            raise RuntimeError("out of memory")
        return [r.seed for r in requests]

    batcher = Batcher(run, batch_size=2, gather_s=0.5)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(batcher.submit, _request(seed)) for seed in (1, 2)]
        for future in futures:
            with pytest.raises(RuntimeError, match="out of memory"):
                future.result(timeout=10)
    failing.clear()
    assert batcher.submit(_request(3)) == 3


def test_batch_size_one_runs_each_request_alone() -> None:
    sizes: list[int] = []

    def run(requests: list[ImageRequest]) -> list[int]:
        sizes.append(len(requests))
        return [0 for _ in requests]

    batcher = Batcher(run, batch_size=1)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batcher.submit, [_request(seed) for seed in range(4)]))
    assert sizes == [1, 1, 1, 1]
