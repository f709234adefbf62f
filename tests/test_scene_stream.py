"""The scene stream's transcription batches: small first, so the first request goes out early."""

from __future__ import annotations

from pathlib import Path

from domain.scene import Recording
from flows.scene_stream import transcription_batches


def _recordings(count: int) -> list[Recording]:
    return [
        Recording(f"s{index}", index, Path(f"s{index}.wav"), f"file:///s{index}.wav", "0" * 64)
        for index in range(count)
    ]


def test_batches_grow_from_one_scene_to_the_task_size_and_keep_the_order() -> None:
    recordings = _recordings(100)
    batches = transcription_batches(recordings, 40)
    assert [len(batch) for batch in batches] == [1, 2, 4, 8, 16, 40, 29]
    assert [r for batch in batches for r in batch] == recordings


def test_a_small_task_size_caps_every_batch_and_short_storyboards_stop_early() -> None:
    assert [len(b) for b in transcription_batches(_recordings(9), 3)] == [1, 2, 3, 3]
    assert [len(b) for b in transcription_batches(_recordings(2), 40)] == [1, 1]
    assert transcription_batches([], 40) == []


def test_without_the_ramp_batches_are_the_task_size() -> None:
    assert [len(b) for b in transcription_batches(_recordings(90), 40, ramp=False)] == [40, 40, 10]
