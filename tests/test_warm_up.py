"""What `storyboard run` loads while its Prefect server starts (`tasks/warm_up.py`): Whisper
exactly when the run will read a recording or hear the storyboard's language."""

from __future__ import annotations

import shutil
from pathlib import Path

from clients.storage import CacheLocation
from configs.settings import Settings
from domain.layout import MODELS
from tasks.language import cached_storyboard_language
from tasks.opening import OpenedStoryboard, open_storyboard
from tasks.transcribe import cached_transcripts
from tasks.warm_up import reads_recordings, warm_up
from tests.helpers import DEMO_DIR


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


def test_whisper_is_warmed_only_for_a_run_that_will_read(tmp_path: Path, cache_dir: Path) -> None:
    source, cache = tmp_path / "board", tmp_path / "cache"
    source.mkdir()
    shutil.copy(DEMO_DIR / "dawn.ogg", source / "dawn.ogg")
    cache.mkdir()
    (cache_dir / MODELS).mkdir(parents=True, exist_ok=True)
    (cache / MODELS).symlink_to(cache_dir / MODELS, target_is_directory=True)
    settings = Settings(cache_dir=cache)

    opened = open_storyboard(str(source), settings)
    assert reads_recordings(opened), "nothing cached: the language is still to be heard"
    warm_up(opened, "draft").loading.join(timeout=120)
    _transcribe(opened)
    assert not reads_recordings(open_storyboard(str(source), settings)), "all cached"

    shutil.copy(DEMO_DIR / "night.ogg", source / "night.ogg")
    retaken = open_storyboard(str(source), settings)
    assert reads_recordings(retaken), "a new recording is read"
    _transcribe(retaken)
    assert not reads_recordings(open_storyboard(str(source), settings))

    named = Settings.model_validate({"cache_dir": cache, "transcription": {"language": "de"}})
    assert reads_recordings(open_storyboard(str(source), named)), (
        "read again in the language the run names"
    )
