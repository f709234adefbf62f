"""The `storyboard` command end to end, run as a user runs it: a real process, real
transcription, Prefect's embedded API, real ffmpeg."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from clients.media.ffmpeg import probe
from tasks.manifest import MANIFEST_COLUMNS
from tests.helpers import DEMO_DIR, PROJECT_ROOT, assert_clean, read_manifest, run_cli, write_wav

pytestmark = pytest.mark.slow


def test_demo_succeeds_cleanly_and_says_where_the_outputs_are(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, _target = demo_run
    assert result.returncode == 0, result.stderr
    assert_clean(result)
    assert "out/storyboard.mp4" in result.stdout and "out/manifest.csv" in result.stdout
    assert "backend: draft" in result.stderr


def test_demo_video_is_h264_aac_as_long_as_the_narrations(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, target = demo_run
    manifest = read_manifest(target)
    info = probe(target / "storyboard.mp4")
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    narration = manifest["audio_duration_s"].astype(float).sum()
    assert info.duration_s == pytest.approx(narration, rel=0.03)


def test_demo_cut_opens_in_opentimelineio_and_matches_the_manifest_within_a_frame(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    import opentimelineio as otio

    _, target = demo_run
    manifest = read_manifest(target)
    cut = otio.adapters.read_from_file(str(target / "storyboard.otio"))
    video = cut.video_tracks()[0]
    assert [clip.name for clip in video] == manifest["scene_id"].tolist()
    frame = 1 / video[0].source_range.duration.rate
    for clip, (_, row) in zip(video, manifest.iterrows(), strict=True):
        span = video.range_of_child(clip)
        assert abs(span.start_time.to_seconds() - float(row["start_s"])) <= frame
        assert abs(span.end_time_exclusive().to_seconds() - float(row["end_s"])) <= frame
        assert [marker.name for marker in clip.markers] == [row["scene_id"]]
        assert (target / clip.media_reference.target_url).is_file()  # relative to TARGET
    assert [clip.name for clip in cut.audio_tracks()[0]] == manifest["scene_id"].tolist()


def test_demo_board_is_a_pdf_with_every_scene(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, target = demo_run
    text = subprocess.run(  # noqa: S603 - a fixed command on our own output
        ["pdftotext", "-layout", str(target / "storyboard.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for scene_id in read_manifest(target)["scene_id"]:
        assert scene_id in text
    assert "The Lion's Day" in text and "page 1/1" in text


def test_demo_manifest_has_every_column_and_scenes_in_order(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, target = demo_run
    manifest = read_manifest(target)
    assert list(manifest.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert manifest["scene_id"].tolist() == ["dawn", "river", "elephants", "storm", "night"]
    assert manifest["status"].tolist() == ["ok"] * 5
    assert set(manifest["backend"]) == {"draft"}
    assert set(manifest["image_model"]) == {"draft"}, "drawn by the draft backend, not by sdxl"
    starts, ends = manifest["start_s"].astype(float), manifest["end_s"].astype(float)
    assert starts.iloc[0] == 0.0
    assert (starts.iloc[1:].to_numpy() == ends.iloc[:-1].to_numpy()).all()
    for column in ("image_path", "clip_path"):
        assert all((target / path).is_file() for path in manifest[column])
    assert (
        "lion" in manifest.loc[0, "prompt"].lower()
        and "cinematic storyboard frame" in manifest.loc[0, "prompt"]
    )


def test_demo_writes_captions_and_a_run_report(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, target = demo_run
    srt = (target / "storyboard.srt").read_text()
    assert srt.startswith("1\n00:00:00,") and "lion" in srt.lower()
    report = json.loads((target / "run.json").read_text())
    assert set(report["stages"]) >= {"ingest", "transcribe", "generate", "assemble", "total"}
    assert report["scenes"] == {"ok": 5, "no_speech": 0, "filtered": 0, "blocked": 0, "failed": 0}
    assert report["backend"] == "draft" and report["engine"] == "faster-whisper"
    assert report["task_runner"] == "thread" and report["versions"]["prefect"]
    assert report["api_calls"] == 0


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--window-size=1280,1600",
]


def test_review_page_loads_in_chromium_and_shows_every_scene(
    demo_run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    from html.parser import HTMLParser

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    _, target = demo_run
    page = target / "index.html"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run(  # noqa: S603 - fixed argument list
        [chromium, *flags, f"--screenshot={tmp_path / 'page.png'}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    consoles = [line for line in shot.stderr.splitlines() if ":CONSOLE" in line]
    assert consoles == []
    assert (tmp_path / "page.png").stat().st_size > 20_000
    dom = subprocess.run(  # noqa: S603 - fixed argument list
        [chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    for scene_id in ("dawn", "river", "elephants", "storm", "night"):
        assert f"<h2>{scene_id}</h2>" in dom

    found: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(v for k, v in attrs if k in {"src", "href", "poster"} and v)

    Links().feed(page.read_text())
    local = [link for link in found if not link.startswith("#")]
    assert local and all((target / link).is_file() for link in local), local
    assert (target / "contact_sheet.png").stat().st_size > 20_000


def test_mixed_folder_renders_good_scenes_and_marks_the_others(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source = tmp_path / "mixed"
    source.mkdir()
    shutil.copy(DEMO_DIR / "dawn.ogg", source / "scene_1.ogg")
    shutil.copy(DEMO_DIR / "dawn.ogg", source / "scene_1.wav")
    write_wav(source / "scene_2.wav", 2.5)
    (source / "scene_3.mp3").write_text("<html>this memo is really text</html>")
    shutil.copy(DEMO_DIR / "night.ogg", source / "scene_10.ogg")
    shutil.copy(DEMO_DIR / "storm.m4a", source / "scene_11 <img src=x onerror=alert(1)>.m4a")

    result = run_cli(["run", str(source), "--out", str(tmp_path / "out")], cli_env, tmp_path)
    assert result.returncode == 3, result.stderr
    manifest = read_manifest(tmp_path / "out")
    markup = "scene_11 <img src=x onerror=alert(1)>"
    assert manifest["scene_id"].tolist() == [
        "scene_1",
        "scene_1.wav",
        "scene_2",
        "scene_3",
        "scene_10",
        markup,
    ]
    assert manifest["status"].tolist() == ["ok", "failed", "no_speech", "failed", "ok", "ok"]
    assert "scene id 'scene_1' is already taken" in manifest.loc[1, "error"]
    page = (tmp_path / "out" / "index.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert manifest.loc[2, "prompt"] == "" and manifest.loc[2, "image_path"] == ""
    assert "not a readable audio file" in manifest.loc[3, "error"]
    assert "\n" not in manifest.loc[3, "error"]
    assert (tmp_path / "out" / "storyboard.mp4").is_file()

    again = run_cli(
        ["run", str(source), "--out", str(tmp_path / "again"), "--only", "scene_10"],
        cli_env,
        tmp_path,
    )
    assert again.returncode == 3, again.stderr
    report = json.loads((tmp_path / "again" / "run.json").read_text())
    assert report["cache_hits"] == 4, "scenes 1 and 11 come from the cache, 10 is regenerated"


def test_folder_without_recordings_exits_2_with_one_line(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    result = run_cli(["run", str(tmp_path)], cli_env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no recordings found" in result.stderr
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "{source}", "--only", "nope"], "no scene called nope"),
        (["run", "{source}", "--backend", "nvidia"], "NVIDIA_API_KEY"),
        (["run", "{source}", "--config", "{source}/missing.yaml"], "no such file"),
        (["run", "{source}", "--task-runner", "ray"], "not available"),
        (["run"], "required"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, cli_env: dict[str, str], args: list[str], message: str
) -> None:
    write_wav(tmp_path / "a.wav", 0.5)
    result = run_cli([arg.format(source=tmp_path) for arg in args], cli_env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_malformed_storyboard_yaml_exits_2(tmp_path: Path, cli_env: dict[str, str]) -> None:
    write_wav(tmp_path / "a.wav", 0.5)
    (tmp_path / "storyboard.yaml").write_text("style: [unclosed\n")
    result = run_cli(["run", str(tmp_path)], cli_env, tmp_path)
    assert result.returncode == 2
    assert "storyboard.yaml: not valid YAML" in result.stderr


def test_transcribe_prints_one_json_object_per_scene(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    shutil.copy(DEMO_DIR / "storm.m4a", tmp_path / "b.m4a")
    write_wav(tmp_path / "a.wav", 2.0)
    result = run_cli(["transcribe", str(tmp_path)], cli_env, PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["scene_id"] for line in lines] == ["a", "b"]
    keys = {
        "scene_id",
        "language",
        "language_probability",
        "transcript",
        "prompt",
        "no_speech",
        "audio_duration_s",
        "seconds",
    }
    assert all(keys <= set(line) for line in lines)
    assert lines[0]["no_speech"] is True and lines[0]["prompt"] == ""
    assert "grass" in lines[1]["transcript"] and lines[1]["language"] == "en"


def test_transcribe_goes_through_the_cache_a_run_uses(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source = tmp_path / "scenes"
    source.mkdir()
    shutil.copy(DEMO_DIR / "storm.m4a", source / "storm.m4a")
    shutil.copy(DEMO_DIR / "night.ogg", source / "night.ogg")
    env = {**cli_env, "STORYBOARD_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli(["transcribe", str(source)], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert len(list((tmp_path / "cache" / "transcripts").rglob("*.json"))) == 2
    again = run_cli(["transcribe", str(source)], env, tmp_path)
    # The same lines, `seconds` (the time the transcription took) included: read, not redone.
    assert again.stdout == first.stdout
    run = run_cli(["run", str(source), "--out", str(tmp_path / "out")], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert_clean(run)
    assert len(list((tmp_path / "cache" / "transcripts").rglob("*.json"))) == 2
