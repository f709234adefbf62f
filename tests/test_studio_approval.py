"""The studio answers a paused image approval: `storyboard run --approve-images` against the
fake NVIDIA API pauses with TARGET/approval/pending.json; the studio (Starlette's TestClient
over the same SOURCE and TARGET) shows the images above the scene cards and resumes the run
through the Prefect API pending.json names, the session's server or the temporary one a run
without PREFECT_API_URL starts. Whoever answers first, the studio or the Prefect UI (its
`POST /flow_runs/{id}/resume`), wins; the other is told so and changes nothing."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from clients.approvals import Outcome, resume_paused_run
from domain.errors import ConfigurationError
from studio.app import create_app
from studio.config import StudioConfig
from studio.renders import LocalRender, RenderService
from testkit.fakes.nvidia_schemas import SDXL, SVD
from testkit.fakes.nvidia_server import FakeNvidia
from tests.helpers import (
    STUDIO_URL,
    assert_clean,
    copy_demo_recordings,
    embedded_prefect,
    nvidia_env,
    read_manifest,
    running_storyboard,
    studio_page,
    wait_for_value,
)

pytestmark = pytest.mark.slow
SCENES = ("dawn", "night", "river")
RECORDINGS = ("dawn.ogg", "river.mp3", "night.ogg")
KEY = "approve-images-1"
ALREADY = "already answered in the Prefect UI or by another reviewer"
DEADLINE_S = 120


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return copy_demo_recordings(tmp_path / "lion", RECORDINGS)


def _args(board: Path, target: Path, tmp_path: Path) -> list[str]:
    config = tmp_path / "approve.yaml"
    config.write_text(
        "generation:\n  requests_per_minute: 600\n  approval_timeout_s: 600\n  approval_poll_s: 1\n"
    )
    return ["run", str(board), "--out", str(target), "--config", str(config), "--approve-images"]


def _pending(target: Path) -> dict[str, Any]:
    path = target / "approval" / "pending.json"
    found: dict[str, Any] = wait_for_value(
        lambda: path.is_file() and json.loads(path.read_text()), DEADLINE_S, "pending.json"
    )
    return found


def _api(method: str, url: str, **options: Any) -> httpx.Response:
    """A request to a Prefect API, again while it says it is busy (503: SQLite busy)."""
    for _ in range(20):
        answer = httpx.request(method, url, timeout=30, **options)
        if answer.status_code != 503:
            return answer
        time.sleep(0.5)
    return answer


def _run(api: str, run_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _api("GET", f"{api}/flow_runs/{run_id}").json()
    return found


def _paused(target: Path) -> dict[str, Any]:
    """pending.json once its run is paused with its form's schema saved (what the Prefect UI
    waits for before it offers the form), talking to the API pending.json names."""
    pending = _pending(target)
    api, run_id = pending["api_url"], pending["flow_run_id"]

    def waiting() -> bool:
        run = _run(api, run_id)
        if run["state_type"] != "PAUSED":
            return False
        if run["state"]["state_details"].get("pause_key") != pending["pause_key"]:
            return False
        schema = f"{api}/flow_runs/{run_id}/input/paused-{pending['pause_key']}-schema"
        return _api("GET", schema).status_code == 200

    wait_for_value(waiting, DEADLINE_S, f"paused at {pending['pause_key']}")
    return pending


def _still_paused(pending: dict[str, Any]) -> bool:
    run = _run(pending["api_url"], pending["flow_run_id"])
    return bool(
        run["state_type"] == "PAUSED"
        and run["state"]["state_details"]["pause_key"] == pending["pause_key"]
    )


@contextmanager
def _studio(source: Path, target: Path, api: str | None = None) -> Iterator[TestClient]:
    """The studio, with `api` as its own PREFECT_API_URL (as `storyboard studio` started with
    the team's server in its environment)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = StudioConfig(source=str(source), target=str(target))
    renders = RenderService(config, lambda: LocalRender(config, "tests"))
    with (
        temporary_settings(updates={PREFECT_API_URL: api}) if api else nullcontext(),
        TestClient(
            create_app(config, renders), base_url=STUDIO_URL, headers={"Accept": "application/json"}
        ) as client,
    ):
        yield client


def _page(client: TestClient) -> tuple[str, str]:
    """The storyboard page and its CSRF token."""
    return studio_page(client, "")


def _answer(
    client: TestClient, pending: dict[str, Any], fields: dict[str, str], **options: Any
) -> httpx.Response:
    _, token = _page(client)
    form = {
        "csrf_token": token,
        "flow_run_id": pending["flow_run_id"],
        "pause_key": pending["pause_key"],
        **fields,
    }
    return client.post("/storyboard/approval", params={"board": ""}, data=form, **options)


def _each(decision: str) -> dict[str, str]:
    return {f"decision.{scene}": decision for scene in SCENES}


def _check_panel(client: TestClient, target: Path, pending: dict[str, Any]) -> None:
    page, _ = _page(client)
    assert "Images waiting for approval" in page
    assert page.index("Images waiting for approval") < page.index('id="cards"'), "above the cards"
    assert f"Round {pending['round']}" in page
    assert pending["deadline"].replace("T", " ").replace("Z", " UTC") in page
    for scene in pending["scenes"]:
        url = f"/storyboard/approval/file/{scene['image']}"
        assert f'src="{url}?board="' in page
        image = client.get(url, params={"board": ""})
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        assert image.content == (target / "approval" / scene["image"]).read_bytes()
        assert f'name="decision.{scene["scene_id"]}"' in page
        assert str(escape(scene["prompt"])) in page and str(scene["seed"]) in page
    sheet = client.get("/storyboard/approval/file/contact_sheet.png", params={"board": ""})
    assert sheet.content == (target / "approval" / "contact_sheet.png").read_bytes()
    for name in ("pending.json", "%2E%2E%2Fmanifest.csv", "%2E%2E", "0009-nothing.png"):
        served = client.get(f"/storyboard/approval/file/{name}", params={"board": ""})
        assert served.status_code == 404, name


def _refused_answers(client: TestClient, pending: dict[str, Any]) -> None:
    """Forged, stale or cross-site answers: refused with a reason, the run still paused."""
    cases: dict[str, tuple[dict[str, str], dict[str, Any], int, str]] = {
        "bad decision": ({**_each("approve"), "decision.night": "maybe"}, {}, 400, "'maybe'"),
        "forged scene": ({**_each("approve"), "decision.ghost": "approve"}, {}, 400, "ghost"),
        "missing scene": ({"decision.dawn": "approve"}, {}, 400, "no answer"),
        "unknown field": ({**_each("approve"), "path": "/etc"}, {}, 400, "unknown field"),
        "long note": ({**_each("approve"), "note.dawn": "x" * 501}, {}, 400, "at most 500"),
        "bad all": ({"all": "reject"}, {}, 400, "all=approve"),
        "stale round": ({**_each("approve"), "pause_key": "approve-images-0"}, {}, 409, ALREADY),
        "cross-site": (_each("approve"), {"headers": {"Origin": "http://evil.example"}}, 403, ""),
        "cross-site fetch": (
            {"all": "approve"},
            {"headers": {"Sec-Fetch-Site": "cross-site"}},
            403,
            "",
        ),
    }
    for name, (fields, options, status, says) in cases.items():
        answer = _answer(client, pending, fields, **options)
        assert answer.status_code == status, (name, answer.text)
        assert says in answer.json()["error"], (name, answer.text)
    no_token = client.post(
        "/storyboard/approval",
        params={"board": ""},
        data={"flow_run_id": pending["flow_run_id"], "pause_key": KEY, "all": "approve"},
    )
    assert no_token.status_code == 403, no_token.text
    assert _still_paused(pending)


def test_the_studio_shows_the_waiting_images_and_its_answer_resumes_the_run(
    board: Path, tmp_path: Path, cli_env: dict[str, str], prefect_api: str
) -> None:
    target = tmp_path / "out"
    with FakeNvidia() as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "cache")
        with (
            running_storyboard(_args(board, target, tmp_path), env, tmp_path) as process,
            _studio(board, target, prefect_api) as client,
        ):
            pending = _paused(target)
            assert pending["api_url"] == prefect_api and pending["pause_key"] == KEY
            assert [scene["scene_id"] for scene in pending["scenes"]] == list(SCENES)
            _check_panel(client, target, pending)
            _refused_answers(client, pending)
            assert fake.stats.by_path[SVD] == 0

            answer = _answer(client, pending, {"all": "approve", "note.dawn": "fine <b>"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["message"].startswith("images answered (round 1: 3 approved")
            assert answer.json()["approval"]["answers"]["dawn"]["note"] == "fine <b>"
            again = _answer(client, pending, _each("skip"))
            assert again.status_code == 409 and ALREADY in again.json()["error"], again.text
            stdout, stderr = process.communicate(timeout=240)
            assert process.returncode == 0, stderr
            assert_clean(subprocess.CompletedProcess([], 0, stdout, stderr))
            assert "Images waiting for approval" not in _page(client)[0]
        assert fake.stats.by_path[SVD] == 3, "a clip for each scene the studio approved"
        assert fake.stats.by_path[SDXL] == 3
    assert (read_manifest(target)["status"] == "ok").all()
    assert not (target / "approval" / "pending.json").exists()


def test_whichever_answers_first_wins_the_prefect_ui_before_the_studio(
    board: Path, tmp_path: Path, cli_env: dict[str, str], prefect_api: str
) -> None:
    target = tmp_path / "out"
    with FakeNvidia() as fake:
        env = nvidia_env(cli_env, fake, tmp_path / "cache")
        with (
            running_storyboard(_args(board, target, tmp_path), env, tmp_path) as process,
            _studio(board, target, prefect_api) as client,
        ):
            pending = _paused(target)
            opened, _ = _page(client)  # the reviewer opened the page while the run waited
            assert "Images waiting for approval" in opened
            ui = _api(
                "POST",
                f"{prefect_api}/flow_runs/{pending['flow_run_id']}/resume",
                json={"run_input": {scene: {"decision": "approve"} for scene in SCENES}},
            )  # what the Prefect UI's Resume form sends
            assert ui.json()["status"] == "ACCEPT", ui.text
            late = _answer(client, pending, _each("skip"))
            assert late.status_code == 409, late.text
            assert ALREADY in late.json()["error"]
            stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        assert_clean(subprocess.CompletedProcess([], 0, stdout, stderr))
        assert fake.stats.by_path[SVD] == 3, "the first answer (approve all) counted"
    manifest = read_manifest(target)
    assert (manifest["status"] == "ok").all(), "none of the studio's late skips"


def test_without_a_server_the_command_waits_and_the_studio_answers_its_temporary_api(
    board: Path, tmp_path: Path, cli_env: dict[str, str], prefect_api: str
) -> None:
    target = tmp_path / "out"
    with FakeNvidia() as fake:
        env = embedded_prefect(nvidia_env(cli_env, fake, tmp_path / "cache"))
        with (
            running_storyboard(_args(board, target, tmp_path), env, tmp_path) as process,
            _studio(board, target) as client,
        ):
            pending = _paused(target)
            api = pending["api_url"]
            assert api != prefect_api and api.startswith("http://127.0.0.1:"), api
            assert process.poll() is None, "the command waits in the terminal"
            answer = _answer(  # a plain form, without the page's script
                client,
                pending,
                {**_each("approve"), "note.river": "good"},
                headers={"Accept": "text/html"},
                follow_redirects=False,
            )
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"].startswith("/storyboard?board=&notice=images+")
            stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        assert_clean(subprocess.CompletedProcess([], 0, stdout, stderr))
        assert fake.stats.by_path[SVD] == 3
    assert (read_manifest(target)["status"] == "ok").all()
    gone = resume_paused_run(api, pending["flow_run_id"], KEY, {}, timeout_s=2)
    assert gone.outcome is Outcome.UNREACHABLE, gone
    assert f"the run's Prefect API at {api} cannot be reached" in gone.reason


def _state(api: str, run: str, state: dict[str, Any]) -> None:
    answer = _api("POST", f"{api}/flow_runs/{run}/set_state", json={"state": state, "force": True})
    assert answer.json()["status"] == "ACCEPT", answer.text


def _pause(api: str, run: str, key: str, schema: dict[str, Any] | None) -> None:
    """The run paused at `key` as `pause_flow_run` pauses it: the state, then the schema."""
    keyset = {what: f"paused-{key}-{what}" for what in ("schema", "response", "description")}
    details = {
        "pause_key": key,
        "pause_timeout": "2999-01-01T00:00:00Z",
        "run_input_keyset": keyset,
    }
    _state(api, run, {"type": "PAUSED", "name": "Paused", "state_details": details})
    if schema is not None:
        saved = _api(
            "POST",
            f"{api}/flow_runs/{run}/input",
            json={"key": keyset["schema"], "value": json.dumps(schema)},
        )
        assert saved.status_code == 201, saved.text


def test_the_client_says_why_a_run_takes_no_answer(prefect_api: str) -> None:
    """Runs on the session's server put in each state by hand, as a paused flow puts itself."""
    flow = _api("POST", f"{prefect_api}/flows/", json={"name": "approval-client"})
    created = _api("POST", f"{prefect_api}/flow_runs/", json={"flow_id": flow.json()["id"]})
    assert created.status_code == 201, created.text
    run = created.json()["id"]
    _state(prefect_api, run, {"type": "RUNNING", "name": "Running"})

    def answer(key: str = KEY, **answers: dict[str, str]) -> Any:
        return resume_paused_run(prefect_api, run, key, answers, timeout_s=10)

    assert answer().outcome is Outcome.NOT_YET, "running, not paused yet"
    _pause(prefect_api, run, KEY, None)
    assert answer().outcome is Outcome.NOT_YET, "paused, its form not saved yet"
    schema = {"type": "object", "required": ["dawn"], "properties": {"dawn": {"type": "object"}}}
    _pause(prefect_api, run, KEY, schema)
    refused = answer(night={"decision": "approve"})
    assert refused.outcome is Outcome.REFUSED and "dawn" in refused.reason, refused
    assert _run(prefect_api, run)["state_type"] == "PAUSED", "a refused answer changes nothing"
    # (No pause past its deadline here: the server's FailExpiredPauses service would fail the
    # run meanwhile.)
    _state(prefect_api, run, {"type": "RUNNING", "name": "Running"})
    late = answer(dawn={"decision": "approve"})
    assert late.outcome is Outcome.TIMED_OUT, "it went on without an answer"

    second = "approve-images-2"
    _pause(prefect_api, run, second, schema)
    assert answer(second, dawn={"decision": "skip"}).outcome is Outcome.ACCEPTED
    assert _run(prefect_api, run)["state_type"] == "RUNNING"
    again = answer(second, dawn={"decision": "skip"})
    assert again.outcome is Outcome.ACCEPTED, "the very answers the run took: sent twice"
    other = answer(second, dawn={"decision": "approve"})
    assert (other.outcome, other.reason) == (Outcome.ANSWERED, ALREADY)
    _state(prefect_api, run, {"type": "COMPLETED", "name": "Completed"})
    ended = answer()
    assert (ended.outcome, ended.reason) == (Outcome.ENDED, "the run has ended (Completed)")
    unknown = resume_paused_run(prefect_api, str(uuid.uuid4()), KEY, {})
    assert unknown.outcome is Outcome.ENDED
    for bad in (
        ("file:///etc/passwd", run, KEY),
        (prefect_api, "../flows", KEY),
        (prefect_api, run, "a/../b"),
    ):
        with pytest.raises(ConfigurationError):
            resume_paused_run(*bad, {})
