"""A run deletes only what it can prove a run wrote (issue 28): recordings inside the output
are refused before any work, a file under `scenes/` that no run made is left alone, and the
outputs of a gone scene are removed, on a folder and on S3 (moto's server on loopback)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from clients.lease import Lease
from clients.storage import open_storage
from domain.errors import ConfigurationError
from domain.layout import TARGET_LEASE
from tasks.preflight import check_apart
from tasks.publish import is_output_name, previous_outputs
from tests.helpers import DEMO_DIR, assert_clean, copy_demo_recordings, run_cli, s3_env

NOTES = "scenes/notes/director-notes.txt"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("storyboard: error")]


@pytest.mark.parametrize(
    "name",
    ["scenes/dawn/image.png", "scenes/2_nuit/clip.mp4", "storyboard.edl", "run.json"],
)
def test_the_names_a_run_writes(name: str) -> None:
    assert is_output_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "scenes/dawn.wav",
        "storyboard.yaml",
        NOTES,
        "scenes/../dawn.wav",
        "scenes/a/b/clip.mp4",
        "../run.json",
        "/etc/passwd",
        "scenes//clip.mp4",
        "scenes/dawn/notes.txt",
    ],
)
def test_names_a_run_never_writes(name: str) -> None:
    assert not is_output_name(name)


def test_a_planted_run_json_or_manifest_cannot_name_other_files(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(
        json.dumps({"outputs": ["storyboard.mp4", "../../etc/passwd", "storyboard.yaml", 7]})
    )
    (tmp_path / "manifest.csv").write_text(
        "scene_id,image_path,clip_path\n"
        "dawn,scenes/dawn/image.png,scenes/dawn/clip.mp4\n"
        "evil,scenes/../dawn.ogg,/home/user/clip.mp4\n"
    )
    assert previous_outputs(str(tmp_path)) == {
        "storyboard.mp4",
        "scenes/dawn/image.png",
        "scenes/dawn/clip.mp4",
    }
    (tmp_path / "run.json").write_text("{not json")
    (tmp_path / "manifest.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert previous_outputs(str(tmp_path)) == frozenset()


def test_locations_are_compared_through_links_and_normalised_prefixes(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "scenes").mkdir(parents=True)
    (tmp_path / "link").symlink_to(project)
    refused = [
        (str(project / "scenes"), str(project), False),
        (str(project), str(project), False),
        (str(tmp_path / "link" / "scenes"), str(project), False),
        (str(project / "scenes"), str(tmp_path / "link") + "/", False),
        ("s3://inbox/proj/scenes/", "s3://inbox/proj/", False),
        ("s3://inbox//proj/./scenes", "s3://inbox/proj", False),
        ("s3://inbox/proj/", "s3://inbox/", False),
        (str(project), str(project / "out"), True),
        ("s3://inbox/", "s3://inbox/rendered/", True),
    ]
    for source, target, watching in refused:
        with pytest.raises(ConfigurationError):
            check_apart(source, target, watching)
    allowed = [
        (str(project / "scenes"), str(project / "scenes-out"), True),
        (str(project), str(project / "out"), False),
        ("s3://inbox/proj/", "s3://inbox/proj-out/", True),
        ("s3://inbox/proj/", "s3://outbox/proj/", True),
        ("s3://proj/", str(project), True),
    ]
    for source, target, watching in allowed:
        check_apart(source, target, watching)


@pytest.mark.slow
def test_recordings_inside_the_output_are_refused_by_every_command(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    project = tmp_path / "proj"
    scenes = copy_demo_recordings(project / "scenes", ["dawn.ogg", "night.ogg"])
    (scenes / "storyboard.yaml").write_text("title: Kept\n")
    before = _files(project)
    commands = [
        ["run", str(scenes), "--out", str(project)],
        ["run", str(scenes), "--out", str(scenes)],
        ["watch", str(project), "--out", str(project / "rendered"), "--once"],
        ["studio", str(project), "--out", str(project / "rendered")],
    ]
    for command in commands:
        result = run_cli(command, cli_env, tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert len(_error_lines(result.stderr)) == 1, result.stderr
        assert "--out" in result.stderr and "Traceback" not in result.stderr
    assert _files(project) == before, "nothing was written or deleted"


@pytest.mark.slow
def test_a_gone_scenes_outputs_go_and_nothing_else_on_a_folder(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source = copy_demo_recordings(tmp_path / "story", ["dawn.ogg", "night.ogg"])
    (source / "storyboard.yaml").write_text("settings:\n  assembly: {exports: [edl, fcp_xml]}\n")
    target = tmp_path / "out"
    first = run_cli(["run", str(source), "--out", str(target)], cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert (target / "storyboard.edl").is_file() and (target / "storyboard.xml").is_file()
    made = json.loads((target / "run.json").read_text())["outputs"]
    assert "scenes/night/clip.mp4" in made and "manifest.csv" in made
    (target / "scenes" / "notes").mkdir()
    (target / NOTES).write_text("Make the lion bigger.\n")
    (target / "scenes" / "night" / "thumbs.db").write_text("the OS's own file\n")
    (target / "storyboard.yaml").write_text("title: a user's copy\n")

    (source / "night.ogg").unlink()
    (source / "storyboard.yaml").write_text("settings:\n  assembly: {exports: [fcp_xml]}\n")
    again = run_cli(["run", str(source), "--out", str(target)], cli_env, tmp_path)

    assert again.returncode == 0, again.stderr
    assert not (target / "storyboard.edl").exists(), "an export turned off goes"
    assert (target / "storyboard.xml").is_file()
    assert not (target / "scenes" / "night" / "clip.mp4").exists()
    assert not list((target / "scenes" / "night").glob("image.*"))
    assert (target / NOTES).read_text() == "Make the lion bigger.\n"
    assert (target / "scenes" / "night" / "thumbs.db").is_file()
    assert (target / "storyboard.yaml").is_file()
    assert (target / "scenes" / "dawn" / "clip.mp4").is_file()
    warnings = [line for line in again.stderr.splitlines() if "that no run made" in line]
    assert len(warnings) == 1 and "director-notes.txt" in warnings[0], again.stderr
    assert_clean(again)


@pytest.mark.slow
def test_a_gone_scenes_outputs_go_and_nothing_else_on_s3(
    tmp_path: Path, cli_env: dict[str, str], s3_endpoint: str
) -> None:
    s3: Any = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"inbox-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for name in ("dawn.ogg", "night.ogg"):
        s3.upload_file(str(DEMO_DIR / name), bucket, f"proj/scenes/{name}")
    s3.put_object(Bucket=bucket, Key=f"proj/{NOTES}", Body=b"Make the lion bigger.\n")
    env = s3_env(cli_env, s3_endpoint)

    def keys() -> set[str]:
        return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}

    before = keys()
    inside = run_cli(
        ["run", f"s3://{bucket}/proj/scenes/", "--out", f"s3://{bucket}/proj/"], env, tmp_path
    )
    assert inside.returncode == 2, inside.stderr
    assert keys() == before

    out = f"s3://{bucket}/rendered/"
    assert (
        run_cli(["run", f"s3://{bucket}/proj/scenes/", "--out", out], env, tmp_path).returncode == 0
    )
    s3.put_object(Bucket=bucket, Key=f"rendered/{NOTES}", Body=b"notes\n")
    s3.delete_object(Bucket=bucket, Key="proj/scenes/night.ogg")
    again = run_cli(["run", f"s3://{bucket}/proj/scenes/", "--out", out], env, tmp_path)

    assert again.returncode == 0, again.stderr
    rendered = {key for key in keys() if key.startswith("rendered/")}
    assert not any(key.startswith("rendered/scenes/night/") for key in rendered), rendered
    assert {f"rendered/{NOTES}", "rendered/scenes/dawn/clip.mp4"} <= rendered
    assert f"proj/{NOTES}" in keys() and "proj/scenes/dawn.ogg" in keys()
    assert_clean(again)


@pytest.mark.slow
def test_a_second_run_to_a_target_in_use_is_refused_naming_the_first(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    source = copy_demo_recordings(tmp_path / "story", ["dawn.ogg"])
    target = tmp_path / "out"
    first = Lease(open_storage(str(target)), TARGET_LEASE, label="(flow run brave-lion)")
    assert first.try_acquire()
    with first.held():
        second = run_cli(["run", str(source), "--out", str(target)], cli_env, tmp_path)
    assert second.returncode == 1, second.stderr
    errors = _error_lines(second.stderr)
    assert len(errors) == 1 and "brave-lion" in errors[0] and "another run" in errors[0], errors
    assert not (target / "manifest.csv").exists()
