"""The review studio's HTTP API (`storyboard studio`), through Starlette's TestClient, against
a real source folder and a target rendered by the real pipeline once for the module (two demo
recordings, draft backend). Every test works on its own copy of both.

Renders are recorded by a fake backend, except in the one end-to-end test of the studio's own
worker, which runs `storyboard run --only` for real, and the Prefect test, which creates a
run of a deployment on the session's Prefect server and completes it by hand.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import yaml
from starlette.testclient import TestClient

from clients.media.ffmpeg import run_ffmpeg
from clients.storage import open_storage
from domain.errors import ConfigurationError
from flows.watch import storyboard_folders
from studio.app import create_app
from studio.config import StudioConfig, studio_config
from studio.renders import LocalRender, RenderBackend, RenderJob, RenderService, choose_backend
from tasks.ingest import find_recordings, plan_storyboard
from tests.helpers import (
    DEMO_DIR,
    DEMO_WORDS,
    STUDIO_URL,
    read_manifest,
    run_cli,
    studio_page,
    wait_until_idle,
    words,
    write_wav,
)

pytestmark = pytest.mark.slow

BOARD = "alpha"
STORYBOARD_YAML = """\
# The studio's test storyboard: its comments must survive every edit.
title: Studio test   # shown on the page
seed: 1234
scenes:                # the order
  - id: dawn           # first
  - id: river          # second
"""
UPLOAD_LIMIT = 256 * 1024
PREFECT_UI = "http://prefect.example:4200"


@dataclass(frozen=True)
class Rendered:
    source: Path
    target: Path
    env: dict[str, str]


def _cli_env(session_home: Path, prefect_api: str) -> dict[str, str]:
    """As conftest's `cli_env`, for a module-scoped fixture."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NVIDIA_API_KEY", "PREFECT_API_URL"} and not key.startswith("PYTEST")
    }
    env.update(
        PREFECT_HOME=str(session_home / "prefect"),
        PREFECT_API_URL=prefect_api,
        STORYBOARD_CACHE_DIR=str(session_home / "cache"),
    )
    return env


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, session_home: Path, prefect_api: str
) -> Rendered:
    """SOURCE with one storyboard folder (`alpha`: dawn, river) and a dot-folder the watcher
    ignores; `alpha` rendered by the real pipeline to TARGET/alpha."""
    root = tmp_path_factory.mktemp("studio")
    source, target = root / "projects", root / "rendered"
    board = source / BOARD
    board.mkdir(parents=True)
    for name in ("dawn.ogg", "river.mp3"):
        shutil.copy(DEMO_DIR / name, board / name)
    (board / "storyboard.yaml").write_text(STORYBOARD_YAML, encoding="utf-8")
    (source / ".trash").mkdir()
    write_wav(source / ".trash" / "old.wav", 0.5, 440)
    env = _cli_env(session_home, prefect_api)
    result = run_cli(["run", str(board), "--out", str(target / BOARD)], env, root)
    assert result.returncode == 0, result.stderr
    return Rendered(source, target, env)


class FakeRenders:
    """A render backend that renders nothing and records what it was asked."""

    name = "fake"
    label = "fake renders (tests)"

    def __init__(self) -> None:
        self.jobs: list[tuple[list[str], str | None]] = []

    def execute(self, job: RenderJob, fingerprint: str | None) -> None:
        self.jobs.append((list(job.scenes), fingerprint))
        job.state, job.exit_status, job.detail = "done", 0, "rendered"


@dataclass
class Studio:
    client: TestClient
    source: Path
    target: Path
    renders: RenderService
    fake: FakeRenders

    @property
    def board(self) -> Path:
        return self.source / BOARD

    def csrf(self, client: TestClient | None = None) -> str:
        return studio_page(client or self.client, BOARD)[1]

    def post(self, scene: str, action: str, **options: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf(), **options.pop("headers", {})}
        return self.client.post(
            f"/storyboard/scene/{scene}/{action}",
            params={"board": BOARD},
            headers=headers,
            **options,
        )

    def wait_for_renders(self, timeout_s: float = 10.0) -> dict[str, Any]:
        return wait_until_idle(self.client, BOARD, timeout_s)


def make_studio(
    rendered: Rendered,
    folder: Path,
    choose: Callable[[StudioConfig], RenderBackend] | None = None,
    **options: Any,
) -> Studio:
    source, target = folder / "projects", folder / "rendered"
    shutil.copytree(rendered.source, source)
    shutil.copytree(rendered.target, target)
    config = StudioConfig(
        source=str(source),
        target=str(target),
        max_upload_bytes=UPLOAD_LIMIT,
        max_recording_s=900.0,
        prefect_ui=PREFECT_UI,
        **options,
    )
    fake = FakeRenders()
    renders = RenderService(config, lambda: choose(config) if choose else fake, claim_poll_s=0.05)
    client = TestClient(
        create_app(config, renders), base_url=STUDIO_URL, headers={"Accept": "application/json"}
    )
    return Studio(client, source, target, renders, fake)


@pytest.fixture
def studio(rendered: Rendered, tmp_path: Path) -> Iterator[Studio]:
    made = make_studio(rendered, tmp_path)
    with made.client:
        yield made


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def webm_recording(seconds: float = 1.0) -> bytes:
    """What a browser's MediaRecorder sends: Opus in WebM, with no duration in its header."""
    rate = 48_000
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.layout = "mono"
        samples = 0.3 * np.sin(2 * np.pi * 330 * np.arange(round(seconds * rate)) / rate)
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def scene_order(board: Path) -> list[str]:
    return [recording.scene_id for recording in plan_storyboard(str(board)).recordings]


# --- pages ---------------------------------------------------------------------------------


def test_home_lists_the_watchers_storyboards_with_counts_last_run_and_flow_run(
    studio: Studio,
) -> None:
    run_json = studio.target / BOARD / "run.json"
    report = json.loads(run_json.read_text())
    report["flow_run_id"] = "0b4c1d2e-run"
    run_json.write_text(json.dumps(report))
    page = studio.client.get("/").text
    assert 'href="/storyboard?board=alpha"' in page and "Studio test" in page
    assert "2: 2 ok" in page
    assert f'href="{PREFECT_UI}/runs/flow-run/0b4c1d2e-run"' in page
    assert ".trash" not in page, "dot-folders are not storyboards (as for the watcher)"
    folders, _ = storyboard_folders(open_storage(str(studio.source)).list(recursive=True))
    assert [folder.path for folder in folders] == [BOARD]

    report.pop("flow_run_id")
    run_json.write_text(json.dumps(report))
    assert "/runs/flow-run/" not in studio.client.get("/").text


def test_storyboard_page_plays_the_video_and_shows_a_card_per_scene(studio: Studio) -> None:
    page = studio.client.get("/storyboard", params={"board": BOARD})
    assert page.status_code == 200
    assert 'src="/storyboard/file/storyboard.mp4?board=alpha"' in page.text
    manifest = read_manifest(studio.target / BOARD)
    for row in manifest.itertuples():
        assert f"<h2>{row.scene_id}</h2>" in page.text
        assert str(row.seed) in page.text and row.transcript in page.text
        image = studio.client.get(f"/storyboard/file/{row.image_path}", params={"board": BOARD})
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert "fake renders (tests)" in page.text, "the page says what renders"
    video = studio.client.get("/storyboard/file/storyboard.mp4", params={"board": BOARD})
    assert video.headers["content-type"] == "video/mp4"
    assert video.content == (studio.target / BOARD / "storyboard.mp4").read_bytes()
    ranged = studio.client.get(
        "/storyboard/file/storyboard.mp4", params={"board": BOARD}, headers={"Range": "bytes=0-9"}
    )
    assert ranged.status_code == 206 and len(ranged.content) == 10, "the video element seeks"
    for name in ("run.json", "manifest.csv", "%2E%2E/alpha/run.json", "scenes/%2E%2E/run.json"):
        served = studio.client.get(f"/storyboard/file/{name}", params={"board": BOARD})
        assert served.status_code == 404, name
    assert studio.client.get("/storyboard", params={"board": "../rendered"}).status_code == 404
    assert studio.client.get("/storyboard", params={"board": ".trash"}).status_code == 404
    for row in manifest.itertuples():  # a clip preview shows its scene's picture, not black
        poster = f'poster="/storyboard/file/{row.image_path}?board=alpha"'
        assert poster in page.text, row.scene_id


def test_a_storyboard_never_rendered_gets_its_first_render_from_the_studio(
    studio: Studio,
) -> None:
    fresh = studio.source / "beta"
    fresh.mkdir()
    shutil.copy(DEMO_DIR / "dawn.ogg", fresh / "dawn.ogg")
    page = studio.client.get("/storyboard", params={"board": "beta"})
    assert page.status_code == 200 and "Render this storyboard" in page.text
    csrf = studio_page(studio.client, "beta")[1]
    answer = studio.client.post(
        "/storyboard/render", params={"board": "beta"}, data={"csrf_token": csrf}
    )
    assert answer.status_code == 200, answer.text
    wait_until_idle(studio.client, "beta", 10.0)
    assert [scenes for scenes, _ in studio.fake.jobs] == [[]], "the whole storyboard, once"
    refused = studio.client.post(
        "/storyboard/render", params={"board": "beta"}, data={"csrf_token": "forged"}
    )
    assert refused.status_code == 403 and len(studio.fake.jobs) == 1, "no CSRF token, no render"


# --- actions ------------------------------------------------------------------------------


def test_a_new_recording_replaces_the_scenes_and_the_old_one_is_kept_in_history(
    studio: Studio,
) -> None:
    old = (studio.board / "dawn.ogg").read_bytes()
    new = (DEMO_DIR / "storm.m4a").read_bytes()
    answer = studio.post("dawn", "recording", files={"file": ("../../evil.wav", new, "audio/wav")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["file"] == "dawn.m4a", "named by the server, from the container"
    assert not (studio.board / "dawn.ogg").exists()
    assert (studio.board / "dawn.m4a").read_bytes() == new
    kept = list((studio.board / ".storyboard" / "history" / "dawn").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == old
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-dawn\.ogg", kept[0].name), kept[0].name
    assert answer.json()["kept"] == f".storyboard/history/dawn/{kept[0].name}"
    assert sorted(path.name for path in studio.source.parent.iterdir()) == ["projects", "rendered"]
    assert not list(studio.source.parent.rglob("evil*"))

    # Ingest and the watcher see the new recording and never the history.
    plan = plan_storyboard(str(studio.board))
    assert [(r.scene_id, r.path.name) for r in plan.recordings] == [
        ("dawn", "dawn.m4a"),
        ("river", "river.mp3"),
    ]
    assert [path.name for path in find_recordings(studio.board)] == ["dawn.m4a", "river.mp3"]
    listed = open_storage(str(studio.source)).list(recursive=True)
    folders, _ = storyboard_folders(listed)
    assert [folder.path for folder in folders] == [BOARD]
    without_history = [item for item in listed if "/.storyboard/" not in item.name]
    assert storyboard_folders(without_history)[0] == folders, "history is not in the fingerprint"

    studio.wait_for_renders()
    assert studio.fake.jobs == [(["dawn"], folders[0].fingerprint)]


def test_a_recording_from_the_microphone_is_the_raw_body(studio: Studio) -> None:
    blob = webm_recording()
    answer = studio.post(
        "river", "recording", content=blob, headers={"Content-Type": "audio/webm;codecs=opus"}
    )
    assert answer.status_code == 200, answer.text
    assert (studio.board / "river.webm").read_bytes() == blob
    assert not (studio.board / "river.mp3").exists()
    assert answer.json()["render"]["scenes"] == ["river"]
    history = studio.board / ".storyboard" / "history" / "river"
    assert [path.name.endswith("-river.mp3") for path in history.iterdir()] == [True]


def test_a_plain_form_without_script_comes_back_to_the_page(studio: Studio) -> None:
    token = studio.csrf()
    answer = studio.client.post(
        "/storyboard/scene/river/take",
        params={"board": BOARD},
        data={"csrf_token": token, "seed": "77"},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/storyboard?board=alpha&notice=river")
    assert "seed: 77" in (studio.board / "storyboard.yaml").read_text()


def test_a_new_take_sets_the_seed_and_prompt_overrides_keeping_comments_and_order(
    studio: Studio,
) -> None:
    manifest = read_manifest(studio.target / BOARD).set_index("scene_id")
    answer = studio.post("dawn", "take", data={"seed": "new"})
    assert answer.status_code == 200, answer.text
    seed = answer.json()["seed"]
    assert seed != int(manifest.loc["dawn", "seed"]) and 0 < seed < 2**32
    text = (studio.board / "storyboard.yaml").read_text()
    assert text == STORYBOARD_YAML.replace(
        "  - id: dawn           # first\n", f"  - id: dawn           # first\n    seed: {seed}\n"
    )
    prompt = "a lion at dawn, <b>golden</b> light"
    assert studio.post("dawn", "take", data={"prompt": f"  {prompt}\n"}).status_code == 200
    spec = plan_storyboard(str(studio.board)).spec
    assert spec.scene("dawn") is not None
    assert (spec.scene("dawn").prompt, spec.scene("dawn").seed) == (prompt, seed)
    assert (
        "&lt;b&gt;golden&lt;/b&gt;"
        in studio.client.get("/storyboard", params={"board": BOARD}).text
    )
    assert studio.post("dawn", "take", data={"prompt": ""}).status_code == 200
    text = (studio.board / "storyboard.yaml").read_text()
    assert "prompt" not in text and "# first" in text and "# shown on the page" in text
    assert scene_order(studio.board) == ["dawn", "river"]
    studio.wait_for_renders()
    assert all(scenes == ["dawn"] for scenes, _ in studio.fake.jobs) and studio.fake.jobs
    assert studio.post("dawn", "take", data={"seed": "x1"}).status_code == 400


def test_a_take_in_a_storyboard_without_a_scene_list_lists_the_current_order(
    studio: Studio,
) -> None:
    (studio.board / "storyboard.yaml").write_text("# no list yet\ntitle: Studio test\n")
    before = scene_order(studio.board)
    assert studio.post("river", "take", data={"seed": "5"}).status_code == 200
    document = yaml.safe_load((studio.board / "storyboard.yaml").read_text())
    assert document["scenes"] == [{"id": "dawn"}, {"id": "river", "seed": 5}]
    assert (studio.board / "storyboard.yaml").read_text().startswith("# no list yet\n")
    assert scene_order(studio.board) == before


def test_a_scene_added_after_another_takes_its_place_in_the_order(studio: Studio) -> None:
    recording = write_wav(studio.source.parent / "new.wav", 1.5, 220).read_bytes()
    answer = studio.post("dawn", "after", files={"file": ("whatever.bin", recording)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["scene_id"] == "dawn-2"
    assert (studio.board / "dawn-2.wav").read_bytes() == recording
    assert scene_order(studio.board) == ["dawn", "dawn-2", "river"]
    text = (studio.board / "storyboard.yaml").read_text()
    assert "  - id: dawn           # first\n  - id: dawn-2\n  - id: river" in text
    studio.wait_for_renders()
    assert [scenes for scenes, _ in studio.fake.jobs] == [["dawn-2"]]
    cards = studio.client.get("/storyboard/cards", params={"board": BOARD}).text
    assert cards.index("<h2>dawn-2</h2>") < cards.index("<h2>river</h2>")
    assert "not rendered yet" in cards


def test_skip_and_bring_back_a_scene(studio: Studio) -> None:
    assert studio.post("river", "skip", data={"skip": "true"}).status_code == 200
    assert plan_storyboard(str(studio.board)).skipped == ("river",)
    assert "skipped" in studio.client.get("/storyboard/cards", params={"board": BOARD}).text
    before = snapshot(studio.source)
    refused = studio.post("dawn", "skip", data={"skip": "true"})
    assert refused.status_code == 409 and "every other scene" in refused.json()["error"]
    assert snapshot(studio.source) == before
    assert studio.post("river", "skip", data={"skip": "false"}).status_code == 200
    assert (studio.board / "storyboard.yaml").read_text() == STORYBOARD_YAML
    studio.wait_for_renders()
    assert [scenes for scenes, _ in studio.fake.jobs] in ([[], []], [[]])


def test_review_verdicts_are_kept_beside_the_outputs(studio: Studio) -> None:
    source = snapshot(studio.source)
    refused = studio.post("river", "review", data={"verdict": "needs_changes", "comment": " "})
    assert refused.status_code == 400
    comment = "<script>alert(1)</script> brighter, please"
    given = studio.post("river", "review", data={"verdict": "needs_changes", "comment": comment})
    assert given.status_code == 200, given.text
    assert studio.post("dawn", "review", data={"verdict": "approved"}).status_code == 200
    reviews = json.loads((studio.target / BOARD / "review.json").read_text())
    manifest = read_manifest(studio.target / BOARD).set_index("scene_id")
    assert set(reviews) == {"dawn", "river"}
    river = reviews["river"]
    assert set(river) == {"verdict", "comment", "at", "audio_sha256", "seed"}
    assert (river["verdict"], river["comment"]) == ("needs_changes", comment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", river["at"])
    assert river["audio_sha256"] == manifest.loc["river", "audio_sha256"]
    assert river["seed"] == int(manifest.loc["river", "seed"])
    assert reviews["dawn"]["verdict"] == "approved" and reviews["dawn"]["comment"] == ""
    cards = studio.client.get("/storyboard/cards", params={"board": BOARD}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; brighter" in cards and "<script>" not in cards
    assert "Approved" in cards and "Needs changes" in cards
    assert snapshot(studio.source) == source, "a verdict never touches the source"
    studio.wait_for_renders()
    assert studio.fake.jobs == [], "a verdict renders nothing"


# --- refusals -----------------------------------------------------------------------------


def eight_channel_flac(path: Path) -> bytes:
    """Ten seconds of 7.1 silence at 384 kHz: a small file, and long to decode."""
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=384000:cl=7.1", "-t", "10", str(path)])
    return path.read_bytes()


def bad_requests(studio: Studio) -> list[tuple[str, Callable[[], Any], int, str]]:
    """What must be refused, with the status and a word of the message."""
    png = (studio.target / BOARD / "contact_sheet.png").read_bytes()
    big = b"\0" * (UPLOAD_LIMIT + 1)
    half_ogg = (DEMO_DIR / "night.ogg").read_bytes()[:3000]
    eight_channels = eight_channel_flac(studio.target.parent / "eight.flac")
    return [
        ("empty body", lambda: studio.post("dawn", "recording", content=b""), 400, "empty"),
        (
            "empty file",
            lambda: studio.post("dawn", "recording", files={"file": ("a.ogg", b"")}),
            400,
            "empty",
        ),
        (
            "text",
            lambda: studio.post("dawn", "recording", content=b"hello " * 100),
            400,
            "not an audio recording",
        ),
        (
            "image",
            lambda: studio.post("dawn", "after", files={"file": ("x.wav", png)}),
            400,
            "audio",
        ),
        ("truncated", lambda: studio.post("dawn", "recording", content=half_ogg), 400, ""),
        (
            "8 channels at 384 kHz",
            lambda: studio.post("dawn", "recording", content=eight_channels),
            400,
            "not a narration",
        ),
        ("too large", lambda: studio.post("dawn", "recording", content=big), 413, "larger"),
        (
            "too large form",
            lambda: studio.post("dawn", "after", files={"file": ("a.wav", big)}),
            413,
            "larger",
        ),
        (
            "no file field",
            lambda: studio.post("dawn", "recording", files={"other": ("a", b"x")}),
            400,
            "file",
        ),
        (
            "unknown scene",
            lambda: studio.post("nope", "take", data={"seed": "new"}),
            404,
            "not found",
        ),
        (
            "unknown scene upload",
            lambda: studio.post("nope", "recording", content=(DEMO_DIR / "night.ogg").read_bytes()),
            404,
            "not found",
        ),
        (
            "traversal",
            lambda: studio.post("..%2F..%2Frendered", "skip", data={"skip": "true"}),
            404,
            "",
        ),
        ("dot-dot", lambda: studio.post("%2E%2E", "review", data={"verdict": "approved"}), 404, ""),
        (
            "unknown board",
            lambda: studio.client.post(
                "/storyboard/scene/dawn/skip",
                params={"board": "../projects"},
                data={"skip": "true"},
            ),
            404,
            "not found",
        ),
        (
            "bad verdict",
            lambda: studio.post("dawn", "review", data={"verdict": "maybe"}),
            400,
            "verdict",
        ),
    ]


def test_bad_requests_are_refused_and_change_nothing(studio: Studio) -> None:
    source, target = snapshot(studio.source), snapshot(studio.target)
    for name, request, status, says in bad_requests(studio):
        answer = request()
        assert answer.status_code == status, (name, answer.text)
        if says:
            assert says in answer.json()["error"], (name, answer.text)
        assert snapshot(studio.source) == source, name
        assert snapshot(studio.target) == target, name
    studio.wait_for_renders()
    assert studio.fake.jobs == []


def test_cross_site_posts_are_refused(studio: Studio) -> None:
    source = snapshot(studio.source)
    url, form = "/storyboard/scene/dawn/take", {"seed": "9"}
    options: dict[str, Any] = {"params": {"board": BOARD}}
    token = studio.csrf()
    with TestClient(
        studio.client.app, base_url=STUDIO_URL, headers={"Accept": "application/json"}
    ) as elsewhere:
        foreign = studio.csrf(elsewhere)  # a token for another browser's cookie
    attempts = {
        "no token": studio.client.post(url, data=form, **options),
        "foreign token": studio.client.post(url, data={**form, "csrf_token": foreign}, **options),
        "forged header": studio.client.post(
            url, data=form, headers={"X-CSRF-Token": "0" * 64}, **options
        ),
        "foreign origin": studio.client.post(
            url,
            data={**form, "csrf_token": token},
            headers={"Origin": "http://evil.example"},
            **options,
        ),
        "null origin": studio.client.post(
            url, data={**form, "csrf_token": token}, headers={"Origin": "null"}, **options
        ),
        "cross-site fetch": studio.client.post(
            url,
            data={**form, "csrf_token": token},
            headers={"Sec-Fetch-Site": "cross-site"},
            **options,
        ),
        "same-site fetch": studio.client.post(
            url,
            data={**form, "csrf_token": token},
            headers={"Sec-Fetch-Site": "same-site"},
            **options,
        ),
    }
    for name, answer in attempts.items():
        assert answer.status_code == 403, (name, answer.text)
    assert snapshot(studio.source) == source
    same_origin = studio.client.post(
        url,
        data={**form, "csrf_token": token},
        headers={"Origin": STUDIO_URL, "Sec-Fetch-Site": "same-origin"},
        **options,
    )
    assert same_origin.status_code == 200, same_origin.text


def test_with_a_token_every_request_must_carry_it(rendered: Rendered, tmp_path: Path) -> None:
    made = make_studio(rendered, tmp_path, token="s3cret-token")
    with made.client as client:
        source = snapshot(made.source)
        assert client.get("/").status_code == 401
        assert client.get("/static/studio.js").status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert client.get("/?token=wrong").status_code == 401
        refused = client.post(
            "/storyboard/scene/dawn/take", params={"board": BOARD}, data={"seed": "3"}
        )
        assert refused.status_code == 401
        assert snapshot(made.source) == source
        visit = client.get("/storyboard?board=alpha&token=s3cret-token", follow_redirects=False)
        assert visit.status_code == 303 and visit.headers["location"] == "/storyboard?board=alpha"
        assert "httponly" in visit.headers["set-cookie"].lower()
        assert client.get("/").status_code == 200, "the cookie carries the token from now on"
        assert made.post("dawn", "take", data={"seed": "3"}).status_code == 200


def test_listening_beyond_loopback_needs_a_token(rendered: Rendered, tmp_path: Path) -> None:
    from configs.settings import Settings

    for host in ("127.0.0.1", "localhost", "::1"):
        studio_config("s", "t", Settings(), host=host, env={})
    token = {"STORYBOARD_STUDIO_TOKEN": "t"}
    assert studio_config("s", "t", Settings(), "0.0.0.0", env=token, allowed_hosts=("a.lan",))
    with pytest.raises(ConfigurationError, match="--allowed-host"):
        studio_config("s", "t", Settings(), "0.0.0.0", env=token)
    with pytest.raises(ConfigurationError, match="STORYBOARD_STUDIO_TOKEN"):
        studio_config("s", "t", Settings(), host="0.0.0.0", env={})
    env = {k: v for k, v in rendered.env.items() if k != "STORYBOARD_STUDIO_TOKEN"}
    args = ["studio", str(rendered.source), "--out", str(tmp_path), "--host", "0.0.0.0"]
    result = run_cli(args, env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "STORYBOARD_STUDIO_TOKEN" in result.stderr


# --- renders ------------------------------------------------------------------------------


def test_the_studios_worker_renders_a_new_recording_end_to_end(
    rendered: Rendered, tmp_path: Path
) -> None:
    """The real local renderer: `storyboard run --only dawn` after a new recording of dawn;
    the new cut has the new narration and river comes from the cache."""
    env = rendered.env
    made = make_studio(rendered, tmp_path, lambda config: LocalRender(config), render_env=env)
    before = read_manifest(made.target / BOARD).set_index("scene_id")
    with made.client:
        status = made.client.get("/storyboard/render", params={"board": BOARD}).json()
        assert status["renderer"] == "local"
        night = (DEMO_DIR / "night.ogg").read_bytes()
        answer = made.post("dawn", "recording", content=night)
        assert answer.status_code == 200, answer.text
        status = wait_until_idle(made.client, BOARD, 240)
    job = status["jobs"][-1]
    assert (job["state"], job["exit_status"], job["scenes"]) == ("done", 0, ["dawn"]), job
    after = read_manifest(made.target / BOARD).set_index("scene_id")
    heard = set(words(after.loc["dawn", "transcript"]))
    assert len(heard & set(words(DEMO_WORDS["night"]))) >= 5, after.loc["dawn", "transcript"]
    assert after.loc["river", "transcript"] == before.loc["river", "transcript"]
    assert after.loc["dawn", "audio_sha256"] != before.loc["dawn", "audio_sha256"]
    report = json.loads((made.target / BOARD / "run.json").read_text())
    assert report["cache_hits"] >= 2, "river's image and clip come from the cache"
    assert not list((made.target / BOARD).glob(".storyboard/claims/*")), "the claim is released"
    cards = made.client.get("/storyboard/cards", params={"board": BOARD}).text
    assert after.loc["dawn", "transcript"] in cards


def test_renders_go_to_prefect_when_its_deployment_is_served(
    rendered: Rendered, tmp_path: Path, prefect_api: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Completed

    config = StudioConfig(source="s", target="t")
    assert "PREFECT_API_URL is not set" in choose_backend(config, None).label
    assert choose_backend(config, prefect_api).name == "local", "not served there"
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        with get_client(sync_client=True) as client:
            flow_id = client.create_flow_from_name("storyboard")
            deployment_id = client.create_deployment(flow_id, "on-demand", parameters={})
        try:
            assert "not being served" in choose_backend(config, prefect_api).label
            with get_client(sync_client=True) as client:  # what a runner polling it does
                client.get_scheduled_flow_runs_for_deployments([deployment_id])
            _render_through_prefect(rendered, tmp_path, prefect_api, deployment_id, Completed)
        finally:
            with get_client(sync_client=True) as client:
                client.delete_deployment(deployment_id)


def _render_through_prefect(
    rendered: Rendered, tmp_path: Path, api: str, deployment_id: Any, completed: Any
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    made = make_studio(rendered, tmp_path, lambda config: choose_backend(config, api))
    with made.client:
        assert "Prefect" in made.client.get("/storyboard", params={"board": BOARD}).text
        assert made.post("river", "take", data={"seed": "11"}).status_code == 200
        only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        deadline = time.monotonic() + 20
        with get_client(sync_client=True) as client:
            while not (runs := client.read_flow_runs(deployment_filter=only)):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            (run,) = runs
            assert run.parameters["only"] == ["river"]
            assert run.parameters["source"] == str(made.board)
            assert run.parameters["target"] == str(made.target / BOARD)
            assert run.parameters["source_fingerprint"]
            client.set_flow_run_state(run.id, completed(), force=True)
        status = wait_until_idle(made.client, BOARD, 20)
    job = status["jobs"][-1]
    assert (job["renderer"], job["state"], job["flow_run_id"]) == ("prefect", "done", str(run.id))
    assert job["flow_run_url"] == f"{PREFECT_UI}/runs/flow-run/{run.id}"


def test_changes_during_a_render_are_queued_into_one_next_render(studio: Studio) -> None:
    started, release = threading.Event(), threading.Event()
    original = studio.fake.execute

    def slow(job: RenderJob, fingerprint: str | None) -> None:
        started.set()
        release.wait(10)
        original(job, fingerprint)

    studio.fake.execute = slow  # type: ignore[method-assign]
    assert studio.post("dawn", "take", data={"seed": "1"}).status_code == 200
    assert started.wait(10)
    assert studio.post("river", "take", data={"seed": "2"}).status_code == 200
    assert studio.post("dawn", "take", data={"seed": "3"}).status_code == 200
    status = studio.client.get("/storyboard/render", params={"board": BOARD}).json()
    assert status["busy"] and [job["state"] for job in status["jobs"]] == ["running", "queued"]
    assert status["jobs"][1]["scenes"] == ["river", "dawn"]
    release.set()
    studio.wait_for_renders()
    assert [scenes for scenes, _ in studio.fake.jobs] == [["dawn"], ["river", "dawn"]]


# -- characters: their references shown, changed and added ------------------------------------

WITH_LEO = (
    STORYBOARD_YAML
    + """\
characters:            # who appears
  - name: Leo
    references: [leo.png]   # the first sheet
    names: [lion]
"""
)


def picture_bytes(
    colour: tuple[int, int, int], size: tuple[int, int] = (24, 24), kind: str = "PNG"
) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=kind)
    return buffer.getvalue()


def camera_picture() -> bytes:
    """A camera's multi-picture JPEG (Pillow: MPO), a JPEG to every viewer."""
    from PIL import Image

    buffer = io.BytesIO()
    first, second = Image.new("RGB", (24, 24), (9, 9, 9)), Image.new("RGB", (12, 12), (1, 1, 1))
    first.save(buffer, format="MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def picture_bomb() -> bytes:
    """A PNG header declaring 30000 x 30000 pixels (Pillow refuses it as a decompression
    bomb) with no pixel data behind it."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + end


def with_leo(studio: Studio) -> bytes:
    (studio.board / "storyboard.yaml").write_text(WITH_LEO, encoding="utf-8")
    first = picture_bytes((200, 150, 40))
    (studio.board / "leo.png").write_bytes(first)
    return first


def post_reference(studio: Studio, data: bytes, character: str = "Leo", **fields: str) -> Any:
    return studio.client.post(
        f"/storyboard/character/{character}/reference",
        params={"board": BOARD},
        headers={"X-CSRF-Token": studio.csrf()},
        files={"file": ("../../evil.png", data, "image/png")},
        data=fields,
    )


def references(studio: Studio) -> list[str]:
    spec = yaml.safe_load((studio.board / "storyboard.yaml").read_text(encoding="utf-8"))
    return list(spec["characters"][0]["references"])


def test_a_reviewer_sees_a_characters_references_and_changes_or_adds_one(studio: Studio) -> None:
    first = with_leo(studio)
    page, _ = studio_page(studio.client, BOARD)
    assert "<h3>Leo</h3>" in page and "named by lion" in page
    served = studio.client.get("/storyboard/reference", params={"board": BOARD, "file": "leo.png"})
    assert served.status_code == 200 and served.content == first
    assert served.headers["content-type"] == "image/png"

    added = post_reference(studio, picture_bytes((20, 200, 60)))
    assert added.status_code == 200, added.text
    name = added.json()["file"]
    assert re.fullmatch(r"leo-reference-\d{8}T\d{6}\.\d{6}Z\.png", name), name
    assert references(studio) == ["leo.png", name]
    assert (studio.board / name).read_bytes() == picture_bytes((20, 200, 60))
    text = (studio.board / "storyboard.yaml").read_text(encoding="utf-8")
    assert "# who appears" in text and "# the first sheet" in text and "# first" in text

    changed = post_reference(studio, camera_picture(), replace="1")
    assert changed.status_code == 200, changed.text
    assert changed.json()["message"].startswith("Leo: reference 1 changed")
    assert references(studio) == [changed.json()["file"], name]
    assert changed.json()["file"].endswith(".jpg"), "a camera's MPO is a JPEG"
    assert (studio.board / "leo.png").read_bytes() == first, "the replaced picture is kept"
    assert not list(studio.source.parent.rglob("evil*"))
    panel = studio.client.get("/storyboard/characters", params={"board": BOARD}).text
    assert changed.json()["file"] in panel and "leo.png" not in panel
    served = studio.client.get("/storyboard/reference", params={"board": BOARD, "file": name})
    assert served.status_code == 200 and served.content == picture_bytes((20, 200, 60))

    studio.wait_for_renders()
    assert studio.fake.jobs and all(scenes == [] for scenes, _ in studio.fake.jobs), (
        "the whole storyboard: its cache re-renders only the scenes that show Leo"
    )


def test_a_bad_reference_is_refused_and_changes_nothing(studio: Studio) -> None:
    with_leo(studio)
    for extra in ("b.png", "c.png", "d.png"):
        (studio.board / extra).write_bytes(picture_bytes((1, 2, 3)))
    full = WITH_LEO.replace("[leo.png]", "[leo.png, b.png, c.png, d.png]")
    cases = [
        ("text", b"a note, not a picture", "Leo", {}, 400, "not a picture"),
        ("gif", picture_bytes((1, 2, 3), kind="GIF"), "Leo", {}, 400, "GIF picture"),
        ("wide", picture_bytes((1, 2, 3), (4097, 2)), "Leo", {}, 400, "over 4096 px"),
        ("heavy", b"\0" * (UPLOAD_LIMIT + 1), "Leo", {}, 413, "picture is larger than"),
        ("a bomb", picture_bomb(), "Leo", {}, 400, "not a picture"),
        ("nobody", picture_bytes((1, 2, 3)), "Max", {}, 404, "character 'Max'"),
        ("no such place", picture_bytes((1, 2, 3)), "Leo", {"replace": "3"}, 400, "reference 3"),
        ("bad place", picture_bytes((1, 2, 3)), "Leo", {"replace": "x"}, 400, "1 to 4"),
        ("a fifth", picture_bytes((1, 2, 3)), "Leo", {}, 409, "4 references"),
    ]
    for name, data, character, fields, status, says in cases:
        if name == "a fifth":
            (studio.board / "storyboard.yaml").write_text(full, encoding="utf-8")
        before = snapshot(studio.source)
        answer = post_reference(studio, data, character, **fields)
        assert answer.status_code == status, (name, answer.text)
        assert says in answer.json()["error"], (name, answer.text)
        assert snapshot(studio.source) == before, name
    outside = studio.source.parent / "secret.png"
    outside.write_bytes(picture_bytes((6, 6, 6)))
    (studio.board / "linked.png").symlink_to(outside)
    (studio.board / "storyboard.yaml").write_text(
        WITH_LEO.replace("[leo.png]", "[leo.png, linked.png]"), encoding="utf-8"
    )
    for name in ("storyboard.yaml", "dawn.ogg", "../projects/alpha/leo.png", "linked.png"):
        answer = studio.client.get("/storyboard/reference", params={"board": BOARD, "file": name})
        assert answer.status_code == 404, name
    studio.wait_for_renders()
    assert studio.fake.jobs == []
