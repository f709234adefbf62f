"""What `storyboard run` loads while its Prefect server starts (`tasks/warm_up.py`): Whisper
exactly when the run will read a recording or hear the storyboard's language, and, when the
language is known, the new recordings read ahead for the flow to take over
(`tasks/transcription_ahead.py`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from clients.storage import CacheLocation
from configs.settings import Settings
from domain.layout import MODELS
from tasks.language import cached_storyboard_language
from tasks.opening import OpenedStoryboard, open_storyboard
from tasks.transcribe import cached_transcripts
from tasks.transcription_ahead import take_over_transcription, transcription_of
from tasks.warm_up import reads_recordings, warm_up
from tests.helpers import DEMO_DIR, recorded_anew, share_readings


def _transcribe(opened: OpenedStoryboard) -> None:
    """What a run's transcribe stage does: the language heard, the recordings read, cached."""
    settings = opened.settings
    cache = CacheLocation(settings.cache_dir)
    recordings = list(opened.plan.recordings)
    language, _ = cached_storyboard_language(
        recordings, settings.transcription, cache, opened.named_language
    )
    models = cache.local / MODELS
    cached_transcripts(cache.open(), recordings, settings.transcription, models, language)


def _reads(opened: OpenedStoryboard) -> bool:
    return reads_recordings(transcription_of(opened))


def test_whisper_is_warmed_only_for_a_run_that_will_read(tmp_path: Path, cache_dir: Path) -> None:
    source, cache = tmp_path / "board", tmp_path / "cache"
    source.mkdir()
    shutil.copy(DEMO_DIR / "dawn.ogg", source / "dawn.ogg")
    cache.mkdir()
    (cache_dir / MODELS).mkdir(parents=True, exist_ok=True)
    (cache / MODELS).symlink_to(cache_dir / MODELS, target_is_directory=True)
    settings = Settings(cache_dir=cache)

    opened = open_storyboard(str(source), settings)
    assert _reads(opened), "nothing cached: the language is still to be heard"
    warm_up(opened, "draft").loading.join(timeout=120)
    _transcribe(opened)
    assert not _reads(open_storyboard(str(source), settings)), "all cached"

    shutil.copy(DEMO_DIR / "night.ogg", source / "night.ogg")
    retaken = open_storyboard(str(source), settings)
    assert _reads(retaken), "a new recording is read"
    _transcribe(retaken)
    assert not _reads(open_storyboard(str(source), settings))

    named = Settings.model_validate({"cache_dir": cache, "transcription": {"language": "de"}})
    assert _reads(open_storyboard(str(source), named)), "read again in the language the run names"


def test_new_recordings_are_read_ahead_until_the_flow_takes_over(tmp_path: Path) -> None:
    source = tmp_path / "board"
    source.mkdir()
    for name in ("1 dawn.ogg", "2 elephants.ogg", "3 river.mp3", "4 storm.m4a", "5 night.ogg"):
        shutil.copy(DEMO_DIR / name.split(" ")[1], source / name)
    settings = Settings(cache_dir=share_readings(tmp_path / "cache"))
    _transcribe(open_storyboard(str(source), settings))
    for scene, demo in (("4 storm", "night.ogg"), ("5 night", "elephants.ogg")):
        next(source.glob(f"{scene}.*")).unlink()
        recorded_anew(demo, source / f"{scene}.wav")  # two retakes after the first speech

    retaken = open_storyboard(str(source), settings)
    transcription = transcription_of(retaken)
    assert transcription is not None, "the first speech did not change: its language is known"
    warming = warm_up(retaken, "draft")
    ahead = take_over_transcription(transcription)  # at once, as a flow with its server would
    warming.loading.join(timeout=120)
    assert ahead.reading is not None and not ahead.reading.is_alive(), "nothing read beside"
    assert ahead.read in (["4 storm"], ["4 storm", "5 night"]), "the first new one, whenever"
    assert _reads(open_storyboard(str(source), settings)) == (len(ahead.read) == 1), (
        "what was read is cached as the flow caches it, and nothing after the take-over"
    )
    (storm,) = (r for r in retaken.plan.recordings if r.scene_id == "4 storm")
    read = ahead.transcript(storm)
    assert read is not None and not read.from_cache, "this run's transcript, not the cache's"
    assert "rock" in read.text.lower() and "stars" in read.text.lower(), read.text
