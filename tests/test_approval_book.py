"""The parts of image approval that need no paused run: new takes, the verdicts kept by image,
the typed form the Prefect UI shows, and `--approve-all` on the draft backend."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema

from clients.cache import ContentCache
from clients.services import backend_for
from configs.settings import GenerationSettings, Settings
from domain.approval import Decision, ImageVerdict, SceneImage
from domain.media import ImageRequest
from flows.approval_form import SceneAnswer, _verdicts, approval_form
from tasks.approval import ApprovalBook, AwaitedScene, is_approval_file, retake
from tests.helpers import DEMO_DIR, assert_clean, read_manifest, run_cli, share_readings

REQUEST = ImageRequest(
    prompt="a lion at dawn, watercolour",
    negative_prompt="",
    model="sdxl",
    seed=7,
    cfg_scale=5.0,
    sampler="K_DPM_2_ANCESTRAL",
    steps=25,
)


def test_a_retake_without_a_new_prompt_draws_another_seed() -> None:
    taken = retake(REQUEST, ImageVerdict(Decision.REJECT, "too dark"), "watercolour")
    assert taken.prompt == REQUEST.prompt and taken.seed != REQUEST.seed
    assert retake(REQUEST, ImageVerdict(Decision.REJECT), "watercolour") == taken, "stable"
    again = retake(taken, ImageVerdict(Decision.REJECT), "watercolour")
    assert again.seed not in (REQUEST.seed, taken.seed)


def test_a_retake_with_a_new_prompt_keeps_the_seed_and_the_style() -> None:
    verdict = ImageVerdict(Decision.REJECT, prompt="a lion asleep under the stars")
    taken = retake(REQUEST, verdict, "watercolour")
    assert (taken.prompt, taken.seed) == ("a lion asleep under the stars, watercolour", 7)
    unchanged = ImageVerdict(Decision.REJECT, prompt="a lion at dawn")
    assert retake(REQUEST, unchanged, "watercolour").seed != 7, "the same prompt: a new seed"


@pytest.fixture
def book(tmp_path: Path) -> ApprovalBook:
    backend = backend_for("draft", GenerationSettings())
    return ApprovalBook(ContentCache(tmp_path / "cache"), backend)


def test_an_approval_holds_for_those_very_bytes(book: ApprovalBook, tmp_path: Path) -> None:
    image, other = tmp_path / "image.png", tmp_path / "other.png"
    image.write_bytes(b"first take")
    other.write_bytes(b"another image for the same request")
    assert not book.approved(REQUEST, image)
    book.record(REQUEST, image, ImageVerdict(Decision.APPROVE, by="reviewer"))
    assert book.approved(REQUEST, image)
    assert not book.approved(REQUEST, other), "a regenerated image needs its own approval"
    book.record(REQUEST, other, ImageVerdict(Decision.SKIP))
    assert not book.approved(REQUEST, other), "a skip is not kept"
    assert book.latest_take(REQUEST, "") == REQUEST, "an approval is no rejection"


def test_rejections_lead_every_later_run_to_the_take_that_replaced_them(
    book: ApprovalBook, tmp_path: Path
) -> None:
    image = tmp_path / "image.png"
    image.write_bytes(b"take")
    first = ImageVerdict(Decision.REJECT, "too dark")
    book.record(REQUEST, image, first)
    second_take = retake(REQUEST, first, "watercolour")
    second = ImageVerdict(Decision.REJECT, prompt="a lion at noon")
    book.record(second_take, image, second)
    third_take = retake(second_take, second, "watercolour")
    assert book.latest_take(REQUEST, "watercolour") == third_take
    assert third_take.prompt == "a lion at noon, watercolour"
    assert book.rejection(REQUEST) == ImageVerdict(Decision.REJECT, "too dark", "", "")


def _awaited(scene_id: str, order: int) -> AwaitedScene:
    image = SceneImage(Path("unused.png"), 7, "sdxl", "draft")
    return AwaitedScene(scene_id, order, "said", REQUEST, image)


def test_the_form_has_an_entry_per_scene_named_by_its_id_and_approving_by_default() -> None:
    scenes = [_awaited("01 intro", 1), _awaited("dawn-2", 2), _awaited("río", 3)]
    form = approval_form(scenes, "### 3 images")
    schema = create_v2_schema(form.__name__, model_base=form)
    assert list(schema["properties"]) == ["01 intro", "dawn-2", "río"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["dawn-2"]["title"] == "2. dawn-2"
    answer = form(**{"dawn-2": {"decision": "reject", "note": " dull ", "prompt": "a lion"}})
    verdicts = _verdicts(answer, scenes)
    assert verdicts["01 intro"].decision is Decision.APPROVE, "unanswered entries approve"
    assert verdicts["dawn-2"] == ImageVerdict(Decision.REJECT, "dull", "a lion", "reviewer")
    with pytest.raises(ValueError):
        form(**{"dawn-2": {"decision": "maybe"}})
    with pytest.raises(ValueError):
        form(**{"unknown": {"decision": "approve"}})
    assert SceneAnswer().decision == "approve"


def test_approve_images_is_off_by_default_and_validated() -> None:
    generation = Settings().generation
    assert (generation.approve_images, generation.approval_timeout_s) == (False, 86_400)
    with pytest.raises(ValueError):
        GenerationSettings(approval_timeout_s=0)


@pytest.mark.slow
def test_approve_all_approves_without_pausing_and_a_later_run_does_not_ask_again(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    board = tmp_path / "lion"
    board.mkdir()
    shutil.copy(DEMO_DIR / "dawn.ogg", board / "dawn.ogg")
    cache = share_readings(tmp_path / "cache")
    env = {**cli_env, "STORYBOARD_CACHE_DIR": str(cache)}
    first = run_cli(
        ["run", str(board), "--out", str(tmp_path / "out"), "--approve-all"], env, tmp_path
    )
    assert first.returncode == 0, first.stderr
    assert_clean(first)
    assert "wait for approval" not in first.stderr + first.stdout
    assert len(list((cache / "approvals").rglob("entry.json"))) == 1
    shutil.rmtree(cache / "clips")  # the image approved, its clip still to be made
    config = tmp_path / "ask.yaml"
    config.write_text("generation:\n  approve_images: true\n  approval_timeout_s: 60\n")
    again = run_cli(
        ["run", str(board), "--out", str(tmp_path / "again"), "--config", str(config)],
        env,
        tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert "wait for approval" not in again.stderr + again.stdout, "approved already"
    assert read_manifest(tmp_path / "again")["status"].tolist() == ["ok"]
    report = json.loads((tmp_path / "again" / "run.json").read_text())
    assert report["stages"]["approve"] >= 0


def test_the_studio_serves_and_deletes_only_the_files_approval_writes() -> None:
    for name in ("pending.json", "contact_sheet.png", "0001-0123abcd.png", "0012-89abcdef.jpeg"):
        assert is_approval_file(name), name
    for name in (
        "index.html",
        "x.js",
        "0001-0123abcd.html",
        "../pending.json",
        "a/0001-0123abcd.png",
    ):
        assert not is_approval_file(name), name


def test_the_studio_answers_only_its_own_prefect_api_or_a_recorded_temporary_one() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from studio.approval import check_api_url
    from studio.errors import StudioError

    elsewhere = (
        "http://127.0.0.1:4200/api",
        "http://localhost:51234/api",
        "http://[::1]:9/api",
        "http://169.254.169.254/latest",
        "https://evil.example/api",
        "nonsense",
    )
    with temporary_settings(updates={PREFECT_API_URL: "https://prefect.studio.example/api"}):
        check_api_url("https://prefect.studio.example/api/")
        for address in elsewhere:
            with pytest.raises(StudioError, match="neither"):
                check_api_url(address)


def test_a_planted_pending_file_cannot_send_the_studio_to_another_address(tmp_path: Path) -> None:
    """Anyone who can write TARGET writes approval/pending.json: the studio calls only its
    own PREFECT_API_URL or a temporary API a run on this machine recorded in PREFECT_HOME."""
    from prefect.settings import PREFECT_HOME, temporary_settings

    from flows.temporary_server import TEMPORARY_APIS
    from studio.approval import check_api_url
    from studio.errors import StudioError

    planted = "http://127.0.0.1:6379/api"
    addresses = (planted, "http://localhost:22/", "http://[::1]:5432/api", "http://evil.example/")
    records = tmp_path / "prefect" / TEMPORARY_APIS
    with temporary_settings(updates={PREFECT_HOME: tmp_path / "prefect"}):
        for address in addresses:
            with pytest.raises(StudioError, match="not sent") as refused:
                check_api_url(address)
            assert refused.value.status == 409
        records.mkdir(parents=True)
        gone = {"api_url": planted, "pid": 2**22 + 7}  # above any pid Linux gives
        (records / "6379.json").write_text(json.dumps(gone))
        with pytest.raises(StudioError, match="not sent"):
            check_api_url(planted)
        (records / "6379.json").write_text(json.dumps({"api_url": planted, "pid": os.getpid()}))
        check_api_url(planted)
        check_api_url(planted + "/")
