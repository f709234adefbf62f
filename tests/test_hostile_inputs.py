"""What a careless or hostile storyboard folder, target or setting must not do (issue 14):
music that becomes a scene, outputs nobody else may read, writes through symbolic links, a
folder taken for a Whisper model, silently dropped scene settings, prefixes that leave their
bucket folder, resolved link paths in the manifest and silently cut prompts."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.cache import write_text_atomic
from clients.storage import open_storage
from clients.transcription import models as whisper
from domain.errors import ConfigurationError
from domain.scene import GeneratedMedia, Recording, SceneOutcome, SceneStatus, TimelineEntry
from tasks.ingest import plan_storyboard
from tasks.manifest import MANIFEST_COLUMNS, manifest_frame, publish_scene_files, write_outputs
from tasks.prompt import MAX_PROMPT_CHARS, compose_prompt
from tests.helpers import DEMO_DIR, assert_clean, read_manifest, run_cli, write_wav

LONG_PROMPT = " ".join(["golden", "lion", "river", "elephant"] * 1500)


@pytest.fixture
def umask_022() -> Iterator[None]:
    saved = os.umask(0o022)
    yield
    os.umask(saved)


@pytest.fixture
def plain_env() -> dict[str, str]:
    """The command's environment for runs that must stop before Prefect is involved."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"NVIDIA_API_KEY", "PREFECT_API_URL"} and not key.startswith("PYTEST")
    }


def _folder(tmp_path: Path, yaml_text: str, names: tuple[str, ...] = ("dawn", "river")) -> Path:
    folder = tmp_path / "story"
    folder.mkdir()
    for name in names:
        write_wav(folder / f"{name}.wav", 0.2, 440)
    (folder / "storyboard.yaml").write_text(yaml_text)
    return folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# 4. The music file


def test_the_music_file_is_never_a_scene_even_with_a_scenes_list(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "music: score.mp3\nscenes:\n  - id: river\n")
    shutil.copy(DEMO_DIR / "night.ogg", folder / "score.mp3")
    plan = plan_storyboard(str(folder))
    assert [r.scene_id for r in plan.recordings] == ["river", "dawn"]
    assert plan.music == folder / "score.mp3"


@pytest.mark.parametrize(
    ("music", "message"),
    [
        ("memo.mp3", "the music file 'memo.mp3' is not usable audio"),
        ("empty.mp3", "the music file 'empty.mp3' is not usable audio"),
        ("gone.mp3", "the music file 'gone.mp3' is not there"),
        ("../outside.mp3", "must be a file in the storyboard folder"),
        ("/etc/passwd", "must be a file in the storyboard folder"),
    ],
)
def test_music_that_is_missing_outside_or_not_audio_is_one_configuration_line(
    tmp_path: Path, music: str, message: str
) -> None:
    folder = _folder(tmp_path, f"music: {music}\n")
    (folder / "memo.mp3").write_text("<html>not music</html>")
    (folder / "empty.mp3").write_bytes(b"")
    shutil.copy(DEMO_DIR / "night.ogg", tmp_path / "outside.mp3")
    with pytest.raises(ConfigurationError, match=message) as caught:
        plan_storyboard(str(folder))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("music", ["memo.mp3", "../outside.mp3"])
def test_bad_music_exits_2_before_any_work(
    tmp_path: Path, plain_env: dict[str, str], music: str
) -> None:
    folder = _folder(tmp_path, f"music: {music}\n")
    (folder / "memo.mp3").write_text("<html>not music</html>")
    shutil.copy(DEMO_DIR / "night.ogg", tmp_path / "outside.mp3")
    result = run_cli(["run", str(folder), "--out", str(tmp_path / "out")], plain_env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "music" in result.stderr
    assert not (tmp_path / "out" / "manifest.csv").exists()


# 6. Permissions


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    saved = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "index.html", "<p>review</p>")
    finally:
        os.umask(saved)
    assert _mode(tmp_path / "index.html") == mode


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_files_created_only_if_absent_follow_the_umask(
    tmp_path: Path, umask: int, mode: int
) -> None:
    """How the studio adds a recording to SOURCE (it was 0600, unreadable to the team)."""
    saved = os.umask(umask)
    try:
        assert open_storage(str(tmp_path)).put_if_absent("dawn-2.ogg", b"OggS")
    finally:
        os.umask(saved)
    assert _mode(tmp_path / "dawn-2.ogg") == mode


def _outcome(tmp_path: Path, scene_id: str, order: int) -> SceneOutcome:
    image, clip = tmp_path / f"{scene_id}.png", tmp_path / f"{scene_id}.mp4"
    image.write_bytes(b"png " + scene_id.encode())
    clip.write_bytes(b"mp4 " + scene_id.encode())
    path = tmp_path / f"{scene_id}.wav"
    recording = Recording(scene_id, order, path, path.as_uri(), "ab" * 32)
    media = GeneratedMedia(image, clip, 7, "sdxl", "draft")
    return SceneOutcome(recording, SceneStatus.OK, prompt="a lion", seed=7, media=media)


def test_every_output_follows_the_umask(tmp_path: Path, umask_022: None) -> None:
    outcomes = [_outcome(tmp_path, "dawn", 1)]
    target = tmp_path / "out"
    write_outputs(outcomes, [TimelineEntry("dawn", 0.0, 2.0)], target, "draft", "sdxl")
    written = [path for path in target.rglob("*") if path.is_file()]
    assert {path.name for path in written} >= {"manifest.csv", "storyboard.srt", "image.png"}
    assert all(_mode(path) == 0o644 for path in written), {p.name: _mode(p) for p in written}


# 7. Symbolic links inside the target


def test_symlinked_scene_folders_are_replaced_never_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("someone else's file")
    target = tmp_path / "out"
    (target / "scenes").mkdir(parents=True)
    for scene_id in ("dawn", "river"):
        (target / "scenes" / scene_id).symlink_to(elsewhere, target_is_directory=True)

    outcomes = [_outcome(tmp_path, "dawn", 1), _outcome(tmp_path, "river", 2)]
    publish_scene_files(outcomes, target)

    assert [path.name for path in elsewhere.iterdir()] == ["keep.txt"]
    for scene_id in ("dawn", "river"):
        folder = target / "scenes" / scene_id
        assert folder.is_dir() and not folder.is_symlink()
        assert (folder / "image.png").read_bytes() == f"png {scene_id}".encode()


def test_a_symlinked_scenes_folder_is_replaced_too(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    (target / "scenes").symlink_to(elsewhere, target_is_directory=True)
    publish_scene_files([_outcome(tmp_path, "dawn", 1)], target)
    assert list(elsewhere.iterdir()) == []
    assert (target / "scenes" / "dawn" / "clip.mp4").is_file()


# 8. Model names and paths


def test_a_folder_named_base_is_not_taken_for_the_base_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path)
    joined = tmp_path / "joined-base"
    monkeypatch.setattr(whisper, "_join_split_weights", lambda name, weights, models: joined)
    assert whisper.resolve_model_dir("base", tmp_path / "models") == joined
    with pytest.raises(ConfigurationError, match="not a CTranslate2 Whisper model"):
        whisper.resolve_model_dir("./base", tmp_path / "models")


def test_a_path_names_a_folder_and_a_bare_word_a_model(tmp_path: Path) -> None:
    weights = tmp_path / "my-model"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"")
    assert whisper.resolve_model_dir(str(weights), tmp_path / "models") == weights
    assert [whisper.is_model_path(n) for n in ("base", "tiny.en", "./m", "~/m", "/m", "a/b")] == [
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    with pytest.raises(ConfigurationError, match=r"unknown Whisper model 'my-model'.*\./my-model"):
        whisper.resolve_model_dir("my-model", tmp_path / "models")


# 9. Scene ids in storyboard.yaml


def test_a_scene_id_typo_with_settings_is_an_error_naming_the_nearest_recording(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path, "scenes:\n  - id: rivr\n    prompt: a quiet river\n")
    with pytest.raises(ConfigurationError, match=r"'rivr' has a prompt but no recording") as caught:
        plan_storyboard(str(folder))
    assert "did you mean 'river'?" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bare_scene_id_without_a_recording_is_one_warning(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "scenes:\n  - id: river\n  - id: deleted\n    skip: true\n")
    plan = plan_storyboard(str(folder))
    assert [r.scene_id for r in plan.recordings] == ["river", "dawn"]
    (warning,) = plan.warnings
    assert "'deleted' is listed but has no recording" in warning


def test_a_scene_id_typo_exits_2_with_one_line(tmp_path: Path, plain_env: dict[str, str]) -> None:
    folder = _folder(tmp_path, "scenes:\n  - id: rivr\n    seed: 0\n")
    result = run_cli(["run", str(folder), "--out", str(tmp_path / "out")], plain_env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "'rivr' has a seed but no recording (did you mean 'river'?)" in result.stderr


# 10. S3 prefixes, symlinked recordings, long prompts


def test_s3_prefixes_are_normalised() -> None:
    assert open_storage("s3://b/a//b/").uri == "s3://b/a/b/"
    assert open_storage("s3://b/./a/").uri == "s3://b/a/"
    assert open_storage("s3://b").uri == "s3://b/"


@pytest.mark.parametrize("uri", ["s3://outbox/../evil/", "s3://b/a/../../c/", "s3://b/.."])
def test_s3_prefixes_that_would_escape_are_refused(uri: str) -> None:
    with pytest.raises(ConfigurationError, match=r"may not contain '\.\.'"):
        open_storage(uri)


def test_an_escaping_s3_target_exits_2(tmp_path: Path, plain_env: dict[str, str]) -> None:
    write_wav(tmp_path / "a.wav", 0.2)
    result = run_cli(["run", str(tmp_path), "--out", "s3://outbox/../evil/"], plain_env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_a_symlinked_recording_keeps_the_path_the_user_dropped(tmp_path: Path) -> None:
    real = write_wav(tmp_path / "archive.wav", 0.2, 440)
    folder = tmp_path / "story"
    folder.mkdir()
    (folder / "dawn.wav").symlink_to(real)
    (recording,) = plan_storyboard(str(folder)).recordings
    assert recording.source_uri == (folder / "dawn.wav").absolute().as_uri()


@pytest.mark.parametrize("subject", [LONG_PROMPT, "x" * 20_000])
def test_a_long_prompt_is_cut_at_a_word_boundary_and_says_so(subject: str) -> None:
    composed = compose_prompt("narration", "ink", override=subject)
    assert len(composed.text) <= MAX_PROMPT_CHARS and composed.text.endswith(", ink")
    kept = composed.text.removesuffix(", ink")
    if " " in subject:
        assert subject.startswith(kept + " ")
    assert f"of the scene prompt's {len(subject)} characters" in composed.note
    assert compose_prompt("A lion at dawn.", "ink").note == ""


def test_the_manifest_carries_the_note_in_a_trailing_column(tmp_path: Path) -> None:
    note = "prompt shortened to the first 590 of the scene prompt's 20000 characters"
    outcome = _outcome(tmp_path, "dawn", 1)
    noted = SceneOutcome(outcome.recording, outcome.status, media=outcome.media, note=note)
    frame = manifest_frame([noted], [], {}, "draft", "sdxl")
    assert list(frame.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert "note" in frame.columns[len(MANIFEST_COLUMNS) :] and frame.loc[0, "note"] == note


# All at once, through the command


@pytest.mark.slow
def test_a_hostile_folder_renders_cleanly_through_the_command(
    tmp_path: Path, cli_env: dict[str, str], umask_022: None
) -> None:
    """Music beside the recordings, a symlinked recording, a listed scene with no recording,
    a 24,000-character scene prompt, symlinked scene folders in the target, and a folder
    named `base` in the working directory: exit 0, and every promise kept."""
    folder = tmp_path / "story"
    folder.mkdir()
    shutil.copy(DEMO_DIR / "dawn.ogg", folder / "dawn.ogg")
    shutil.copy(DEMO_DIR / "river.mp3", folder / "river.mp3")
    shutil.copy(DEMO_DIR / "night.ogg", folder / "score.mp3")
    shutil.copy(DEMO_DIR / "storm.m4a", tmp_path / "archived storm.m4a")
    (folder / "storm.m4a").symlink_to(tmp_path / "archived storm.m4a")
    (folder / "storyboard.yaml").write_text(
        f"music: score.mp3\nscenes:\n  - id: ghost\n  - id: river\n    prompt: {LONG_PROMPT}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "out"
    (target / "scenes").mkdir(parents=True)
    (target / "scenes" / "dawn").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "base").mkdir()

    result = run_cli(["run", str(folder), "--out", str(target)], cli_env, tmp_path)

    assert result.returncode == 0, result.stderr
    assert_clean(result)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and "'ghost' is listed but has no recording" in warnings[0]
    manifest = read_manifest(target).set_index("scene_id")
    assert manifest.index.tolist() == ["river", "dawn", "storm"]
    assert manifest.loc["storm", "source_uri"] == (folder.resolve() / "storm.m4a").as_uri()
    assert "prompt shortened" in manifest.loc["river", "note"]
    assert manifest.loc["dawn", "note"] == ""
    assert list(elsewhere.iterdir()) == []
    modes = {p.relative_to(target).as_posix(): _mode(p) for p in target.rglob("*") if p.is_file()}
    assert set(modes) >= {"index.html", "run.json", "storyboard.vtt", "contact_sheet.png"}
    assert set(modes.values()) == {0o644}, modes
