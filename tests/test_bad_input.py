"""Bad recordings among good ones: each bad one becomes a failed scene with a one-line reason,
every good one still renders, and the run exits 3."""

from __future__ import annotations

import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clients.media import audio as media
from clients.media.audio import check_audio, decode_audio
from clients.media.ffmpeg import run_ffmpeg
from domain.errors import AudioError
from tests.helpers import (
    DEMO_DIR,
    DEMO_WORDS,
    assert_clean,
    read_manifest,
    run_cli,
    word_error_rate,
    write_wav,
)

TWO_HOURS_S = 7200


def write_long_wav(path: Path, seconds: int) -> Path:
    """An 8 kHz 8-bit silent WAV: hours of audio in tens of megabytes, written in a blink."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        silence = np.full(8000 * 60, 128, np.uint8).tobytes()
        for _ in range(seconds // 60):
            out.writeframes(silence)
    return path


def cut_in_half(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def convert(source: Path, target: Path, *options: str) -> Path:
    run_ffmpeg(["-i", str(source), *options, str(target)])
    return target


def test_truncated_recordings_are_refused(tmp_path: Path) -> None:
    wav = convert(DEMO_DIR / "dawn.ogg", tmp_path / "whole.wav")
    assert len(decode_audio(wav, 16_000)) > 16_000 * 2.5
    for whole in (wav, DEMO_DIR / "river.mp3"):
        half = cut_in_half(whole, tmp_path / f"half{whole.suffix}")
        with pytest.raises(AudioError, match=r"truncated: it decodes to \d\.\d s of the \d\.\d s"):
            decode_audio(half, 16_000)


def test_many_channels_at_extreme_rates_are_refused_before_decoding(tmp_path: Path) -> None:
    flac = tmp_path / "eight.flac"
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=384000:cl=7.1", "-t", "120", str(flac)])
    started = time.perf_counter()
    for check in (lambda: decode_audio(flac, 16_000, max_seconds=900), lambda: check_audio(flac)):
        with pytest.raises(AudioError, match="8 channels at 384000 Hz is not a narration"):
            check()
    assert time.perf_counter() - started < 5, "decoding two minutes of it takes far longer"
    stereo = convert(
        DEMO_DIR / "dawn.ogg", tmp_path / "stereo 96k.flac", "-ac", "2", "-ar", "96000"
    )
    assert len(decode_audio(stereo, 16_000)) > 16_000 * 2.5


def test_hours_long_recordings_are_refused_without_decoding_them(tmp_path: Path) -> None:
    long = write_long_wav(tmp_path / "long.wav", TWO_HOURS_S)
    started = time.perf_counter()
    with pytest.raises(AudioError, match=r"2:00:00 long; a scene's narration may be at most 15:00"):
        decode_audio(long, 16_000, max_seconds=900)
    assert time.perf_counter() - started < 5, "decoding two hours takes far longer than this"


def test_a_recording_that_declares_no_length_is_stopped_at_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live-written webm or ogg files may declare no duration; decoding stops at the limit."""
    monkeypatch.setattr(media, "declared_seconds", lambda path: None)
    long = write_wav(tmp_path / "long.wav", 12.0, 440.0)
    with pytest.raises(AudioError, match="long; a scene's narration may be at most 0:05"):
        decode_audio(long, 16_000, max_seconds=5)
    assert len(decode_audio(long, 16_000, max_seconds=13)) == 12 * 16_000


@pytest.mark.slow
def test_bad_recordings_fail_alone_and_good_ones_in_any_format_render(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source = tmp_path / "bad and good"
    source.mkdir()
    convert(DEMO_DIR / "dawn.ogg", source / "01 stereo 48k.wav", "-ac", "2", "-ar", "48000")
    convert(DEMO_DIR / "night.ogg", source / "02 phone 8k.wav", "-ar", "8000")
    (source / "03 empty.mp3").write_bytes(b"")
    cut_in_half(DEMO_DIR / "river.mp3", source / "04 half uploaded.mp3")
    cut_in_half(DEMO_DIR / "storm.m4a", source / "05 half uploaded.m4a")
    write_long_wav(source / "06 two hours.wav", TWO_HOURS_S)
    (source / "07 memo.ogg").write_text("Remember to buy milk.\n")
    convert(DEMO_DIR / "elephants.ogg", source / "08 éléphants à l'aube.flac")

    result = run_cli(["run", str(source), "--out", str(tmp_path / "out")], cli_env, tmp_path)

    assert result.returncode == 3, result.stderr
    manifest = read_manifest(tmp_path / "out").set_index("scene_id")
    status = manifest["status"].to_dict()
    good = ["01 stereo 48k", "02 phone 8k", "08 éléphants à l'aube"]
    bad = ["03 empty", "04 half uploaded", "05 half uploaded", "06 two hours", "07 memo"]
    assert status == {**dict.fromkeys(good, "ok"), **dict.fromkeys(bad, "failed")}, status
    # Each good copy reads as the words spoken in it, nearer them than any other narration,
    # give or take what a processor's arithmetic changes in a marginal copy (the 8-kHz phone
    # line has heard "kite full of cars", the FLAC "a family un-meliphant swades").
    spoken = {"01 stereo 48k": "dawn", "02 phone 8k": "night", "08 éléphants à l'aube": "elephants"}
    for scene, demo in spoken.items():
        heard = manifest.loc[scene, "transcript"]
        own = word_error_rate(DEMO_WORDS[demo], heard)
        others = min(
            word_error_rate(words, heard) for name, words in DEMO_WORDS.items() if name != demo
        )
        assert own <= 0.5 and own < others, (scene, heard, own, others)
    errors = manifest["error"].to_dict()
    assert "empty (0 bytes)" in errors["03 empty"]
    assert "truncated" in errors["04 half uploaded"]
    assert "not a readable audio file" in errors["05 half uploaded"]
    assert "2:00:00 long" in errors["06 two hours"]
    assert "not a readable audio file" in errors["07 memo"]
    assert all("\n" not in error for error in errors.values())
    assert all(manifest.loc[scene, "image_path"] == "" for scene in bad)
    video_s = manifest["end_s"].max()
    assert video_s < 60, "a refused two-hour narration must not end up in the video"
    assert (tmp_path / "out" / "storyboard.mp4").stat().st_size > 10_000
    assert_clean(result)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 600 KB filesystem: room for a few files, not for a storyboard video."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(  # noqa: S603 - fixed argument list
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)  # noqa: S603


@pytest.mark.slow
def test_a_full_disk_is_one_clear_line_and_exit_1(
    tiny_disk: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    target = tiny_disk / "out"
    result = run_cli(["run", str(DEMO_DIR), "--out", str(target)], cli_env, tmp_path)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("storyboard: error")]
    assert lines == [
        "storyboard: error: the disk is full: free some space where the outputs (--out), the "
        "cache (STORYBOARD_CACHE_DIR) and Prefect (PREFECT_HOME) are written"
    ], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (target / "storyboard.mp4").exists() and not (target / "manifest.csv").exists()
