from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from tasks.ingest import natural_key, plan_storyboard
from tests.helpers import write_wav


def _touch_recordings(folder: Path, names: list[str]) -> None:
    for name in names:
        write_wav(folder / name, 0.1)


def test_natural_order_puts_scene_2_before_scene_10(tmp_path: Path) -> None:
    _touch_recordings(tmp_path, ["scene_10.wav", "scene_2.mp3", "Scene_1.flac", "scene_3.ogg"])
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "scene_2.txt").write_text("the words of scene 2, not a second scene_2")
    (tmp_path / ".hidden.wav").write_bytes(b"")
    plan = plan_storyboard(str(tmp_path))
    assert [r.scene_id for r in plan.recordings] == ["Scene_1", "scene_2", "scene_3", "scene_10"]
    assert [r.order for r in plan.recordings] == [1, 2, 3, 4]


def test_natural_key_compares_numbers_as_numbers() -> None:
    assert sorted(["b10", "b9", "a100", "a20"], key=natural_key) == ["a20", "a100", "b9", "b10"]


def test_storyboard_yaml_orders_listed_scenes_first_and_skips(tmp_path: Path) -> None:
    _touch_recordings(tmp_path, ["a.wav", "b.wav", "c.wav", "d.wav"])
    (tmp_path / "storyboard.yaml").write_text(
        "title: Test\nstyle: ink\nscenes:\n"
        "  - id: c\n    prompt: a red door\n    seed: 7\n"
        "  - id: a\n"
        "  - id: b\n    skip: true\n"
    )
    plan = plan_storyboard(str(tmp_path))
    assert [r.scene_id for r in plan.recordings] == ["c", "a", "d"]
    assert plan.skipped == ("b",)
    assert plan.title == "Test"
    first = plan.recordings[0]
    assert (first.prompt_override, first.seed_override) == ("a red door", 7)


def test_recordings_are_fingerprinted_with_sha256(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "one.wav", 0.2, 440)
    (recording,) = plan_storyboard(str(tmp_path)).recordings
    assert recording.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recording.source_uri == path.resolve().as_uri()


def test_storyboard_file_names_its_source_folder(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    folder.mkdir()
    _touch_recordings(folder, ["x.wav"])
    spec = tmp_path / "mine.yaml"
    spec.write_text("source: voices\ntitle: Mine\n")
    plan = plan_storyboard(str(spec))
    assert plan.name == "mine"
    assert [r.scene_id for r in plan.recordings] == ["x"]


def test_folder_without_recordings_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(ConfigurationError, match="no recordings found"):
        plan_storyboard(str(tmp_path))


def test_missing_source_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such folder"):
        plan_storyboard(str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: [unclosed\n", "not valid YAML"),
        ("titel: typo\n", "unknown key 'titel'"),
        ("scenes:\n  - id: a\n  - id: a\n", "listed twice"),
        ("seed: -3\n", "seed"),
        ("- just\n- a list\n", "mapping"),
        ("title: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_bad_storyboard_yaml_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    _touch_recordings(tmp_path, ["a.wav"])
    (tmp_path / "storyboard.yaml").write_text(text)
    with pytest.raises(ConfigurationError, match=message) as caught:
        plan_storyboard(str(tmp_path))
    assert "\n" not in str(caught.value)


def test_the_second_file_with_a_taken_scene_id_becomes_a_failed_scene(tmp_path: Path) -> None:
    _touch_recordings(tmp_path, ["intro.wav", "intro.mp3", "outro.wav"])
    recordings = plan_storyboard(str(tmp_path)).recordings
    assert [(r.scene_id, r.problem) for r in recordings] == [
        ("intro", ""),
        ("intro.wav", "scene id 'intro' is already taken by intro.mp3; rename one"),
        ("outro", ""),
    ]


def test_recordings_that_are_left_out_are_said_once(tmp_path: Path) -> None:
    _touch_recordings(tmp_path, ["a.wav", ".b.wav", ".~lock.c.ogg"])
    (tmp_path / ".notes.txt").write_text("not audio")
    plan = plan_storyboard(str(tmp_path))
    assert [r.scene_id for r in plan.recordings] == ["a"]
    ignored = [warning for warning in plan.warnings if warning.startswith("ignored")]
    assert len(ignored) == 2 and all("starts with '.'" in warning for warning in ignored)
    assert "'.b.wav'" in ignored[0] and "'.~lock.c.ogg'" in ignored[1]
