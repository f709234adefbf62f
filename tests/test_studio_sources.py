"""The studio's edits to a storyboard's source, without a server: storyboard.yaml edited
round-trip (comments, order, indentation), scene order as ingest sees it, recordings replaced
with a copy in history, and what is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clients.storage import open_storage
from studio.errors import StudioError
from studio.security import check_bind, is_loopback, trusted_hosts
from studio.sources import (
    add_scene,
    new_take,
    random_seed,
    read_source,
    replace_recording,
    set_skip,
)
from studio.storyboard_file import edit_scenes
from studio.uploads import check_recording
from tasks.ingest import plan_storyboard
from tests.helpers import DEMO_DIR, write_wav


def _folder(tmp_path: Path, storyboard: str | None, *names: str) -> Path:
    folder = tmp_path / "board"
    folder.mkdir()
    for name in names:
        write_wav(folder / name, 0.6, 330)
    if storyboard is not None:
        (folder / "storyboard.yaml").write_text(storyboard, encoding="utf-8")
    return folder


def _order(folder: Path) -> list[str]:
    return [recording.scene_id for recording in plan_storyboard(str(folder)).recordings]


def test_unlisted_scenes_are_listed_in_their_place_so_the_order_never_changes(
    tmp_path: Path,
) -> None:
    text = "title: t\nscenes:\n- id: c   # c first\n"
    folder = _folder(tmp_path, text, "a.wav", "b.wav", "c.wav", "scene_10.wav", "scene_2.wav")
    before = _order(folder)
    assert before == ["c", "a", "b", "scene_2", "scene_10"]
    storage = open_storage(str(folder))
    new_take(storage, read_source(storage), "scene_2", 7, None)
    assert _order(folder) == before
    written = (folder / "storyboard.yaml").read_text()
    assert written == (
        "title: t\nscenes:\n- id: c   # c first\n- id: a\n- id: b\n- id: scene_2\n  seed: 7\n"
        "- id: scene_10\n"
    ), "the list's own indentation (no offset here) is kept"


def test_a_removed_override_leaves_its_comments_behind(tmp_path: Path) -> None:
    text = (
        "scenes:\n"
        "  - id: a\n"
        "    prompt: 'a red door'   # the director's idea\n"
        "  # b comes next\n"
        "  - id: b\n"
    )
    folder = _folder(tmp_path, text, "a.wav", "b.wav")
    storage = open_storage(str(folder))
    new_take(storage, read_source(storage), "a", None, "")
    written = (folder / "storyboard.yaml").read_text()
    assert "prompt" not in written
    assert "# the director's idea" in written and "  # b comes next\n  - id: b\n" in written


def test_an_empty_flow_list_becomes_a_block_list(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "title: t  # keep me\nscenes: []\n", "a.wav", "b.wav")
    storage = open_storage(str(folder))
    set_skip(storage, read_source(storage), "b", True)
    written = (folder / "storyboard.yaml").read_text()
    assert written == "title: t  # keep me\nscenes:\n  - id: a\n  - id: b\n    skip: true\n"
    assert plan_storyboard(str(folder)).skipped == ("b",)


def test_a_new_scene_is_inserted_after_its_neighbour_with_a_fresh_id(tmp_path: Path) -> None:
    folder = _folder(tmp_path, None, "a.wav", "a-2.wav", "b.wav")
    storage = open_storage(str(folder))
    recording = check_recording((DEMO_DIR / "dawn.ogg").read_bytes(), 900.0)
    assert recording.extension == "ogg" and recording.seconds > 1
    scene_id = add_scene(storage, read_source(storage), "a", recording)
    assert scene_id == "a-3", "a-2 is taken"
    assert _order(folder) == ["a-2", "a", "a-3", "b"], "natural order before, a-3 after a"


def test_invalid_storyboard_yaml_refuses_edits_and_changes_nothing(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "title: t\ncolour: red\n", "a.wav")
    storage = open_storage(str(folder))
    state = read_source(storage)
    assert state.spec is None and "unknown key 'colour'" in state.spec_problem
    with pytest.raises(StudioError, match=r"fix storyboard\.yaml first") as refused:
        new_take(storage, state, "a", 3, None)
    assert refused.value.status == 409
    assert (folder / "storyboard.yaml").read_text() == "title: t\ncolour: red\n"
    for broken in ("title: [unclosed\n", "title: " + "[" * 5000 + "]" * 5000 + "\n"):
        (folder / "storyboard.yaml").write_text(broken)
        with pytest.raises(StudioError, match="not valid YAML"):
            edit_scenes(storage, ["a"], lambda scenes: scenes.set("a", "seed", 1))


def test_replacing_keeps_the_old_recording_and_refuses_a_clash(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "music: a.mp3\n", "a.wav", "b.wav", "b.flac")
    shutil.copy(DEMO_DIR / "river.mp3", folder / "a.mp3")
    storage = open_storage(str(folder))
    state = read_source(storage)
    assert state.files == {"a": "a.wav", "b": "b.flac", "b.wav": "b.wav"}, "as ingest names them"
    mp3 = check_recording((DEMO_DIR / "river.mp3").read_bytes(), None)
    with pytest.raises(StudioError, match="music"):
        replace_recording(storage, state, "a", mp3)
    with pytest.raises(StudioError, match="also claims scene 'b'"):
        replace_recording(storage, state, "b", mp3)
    ogg = check_recording((DEMO_DIR / "dawn.ogg").read_bytes(), None)
    old = (folder / "a.wav").read_bytes()
    replaced = replace_recording(storage, state, "a", ogg)
    assert replaced.name == "a.ogg" and not (folder / "a.wav").exists()
    assert replaced.kept is not None and (folder / replaced.kept).read_bytes() == old
    assert [r.path.name for r in plan_storyboard(str(folder)).recordings] == [
        "a.ogg",
        "b.flac",
        "b.wav",
    ]


def test_recordings_are_checked_whole(tmp_path: Path) -> None:
    long = write_wav(tmp_path / "long.wav", 3.0, 200).read_bytes()
    with pytest.raises(StudioError, match="at most"):
        check_recording(long, 2.0)
    with pytest.raises(StudioError, match="truncated") as truncated:
        check_recording(long[: len(long) // 2], None)
    assert str(tmp_path) not in truncated.value.message and "/tmp" not in truncated.value.message


def test_seeds_and_bind_addresses() -> None:
    assert all(random_seed(5) not in (0, 5) for _ in range(50))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    check_bind("0.0.0.0", "a token", ("studio.lan",))
    with pytest.raises(Exception, match="--allowed-host"):
        check_bind("0.0.0.0", "a token")
    assert trusted_hosts("::1", ()) == ["localhost", "127.0.0.1", "[::1]"]
    assert trusted_hosts("0.0.0.0", ("Studio.LAN",)) == [
        "localhost",
        "127.0.0.1",
        "[::1]",
        "studio.lan",
    ]
    assert trusted_hosts("192.168.1.2", ())[-1] == "192.168.1.2"
    with pytest.raises(Exception, match="STORYBOARD_STUDIO_TOKEN"):
        check_bind("example.org", None)
