"""The same character in every scene that names it: `characters:` in storyboard.yaml, drawn
from reference pictures by an IP-Adapter on `--backend local` (a tiny SD pipeline and a tiny
adapter built from configs: testkit/fakes/tiny_adapters.py), offline on the CPU."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
import yaml
from PIL import Image

from clients.generation.local.backend import LocalDiffusersBackend, draws_references
from clients.generation.local.reference_editing import editing_references, reference_sheet
from clients.storage import open_storage
from configs.settings import GenerationSettings, LocalGenerationSettings, load_storyboard_spec
from domain.errors import ConfigurationError
from domain.media import CharacterReference, ImageRequest
from domain.scene import Transcript
from domain.storyboard import StoryboardSpec
from flows.watch import storyboard_folders
from tasks.characters import check_references, scene_characters
from tasks.ingest import resolve_source
from tasks.prompt import image_request
from testkit.fakes.tiny_adapters import save_ip_adapter
from testkit.fakes.tiny_editing_pipelines import save_klein, save_kontext
from testkit.fakes.tiny_pipelines import Models, sd_pipeline
from testkit.sources import make_source
from tests.helpers import (
    DEMO_DIR,
    assert_clean,
    read_manifest,
    recording,
    run_cli,
    share_readings,
)

pytest.importorskip("diffusers", reason="--backend local needs the `local` extra")

SCENES = {
    "dawn": "dawn.ogg",
    "night": "night.ogg",
    "river": "river.mp3",
    "elephants": "elephants.ogg",
    "storm": "storm.m4a",
    "sunrise": "dawn.ogg",
}
CHARACTERS = [
    {"name": "Leo", "references": ["leo-1.png", "leo-2.png"], "names": ["lion"]},
    {"name": "Mia", "references": ["mia.png"], "names": ["elephant calf"], "strength": 0.9},
]
USING = {"dawn": "Leo", "night": "Leo", "river": "Leo;Mia"}
NOBODY = ("elephants", "storm", "sunrise")


def spec(with_characters: bool) -> dict[str, Any]:
    scenes = [
        {"id": "river", "prompt": "the lion and the elephant calf at a quiet river"},
        {"id": "sunrise", "prompt": "an empty misty jungle at sunrise"},
    ]
    story: dict[str, Any] = {"title": "Characters", "seed": 3, "scenes": scenes}
    return {**story, "characters": CHARACTERS} if with_characters else story


def picture(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (48, 48)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def storyboard(folder: Path, with_characters: bool) -> Path:
    source = make_source(folder, SCENES, spec(with_characters))
    picture(source / "leo-1.png", (200, 150, 40))
    picture(source / "leo-2.png", (180, 120, 30))
    picture(source / "mia.png", (90, 90, 200))
    return source


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_ip_adapter(sd_pipeline(), tmp_path_factory.mktemp("ip-adapter"))


def render(
    source: Path, cache: Path, models: Models, adapter: Path, cli_env: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, bytes], dict[str, Any]]:
    local = {"image_model": str(models.sd), "ip_adapter": str(adapter), "device": "cpu"}
    local |= {"steps": 2, "clip_width": 64, "clip_height": 64, "frames": 4}
    config = {
        "generation": {"local": local},
        "assembly": {"width": 64, "height": 64, "fps": 8, "render_workers": 1},
    }
    config_path = source.parent / "local.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    target = source.parent / "out"
    env = {**cli_env, "HF_HUB_OFFLINE": "1", "STORYBOARD_CACHE_DIR": str(share_readings(cache))}
    args = ["run", str(source), "--out", str(target), "--backend", "local"]
    result = run_cli([*args, "--config", str(config_path)], env, source.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean(result)
    manifest = read_manifest(target).set_index("scene_id")
    images = {s: (target / manifest.loc[s, "image_path"]).read_bytes() for s in SCENES}
    return manifest, images, json.loads((target / "run.json").read_text())


def test_scenes_naming_a_character_are_drawn_from_its_references_and_no_other_scene_is(
    tmp_path: Path, models: Models, adapter: Path, cli_env: dict[str, str]
) -> None:
    source = storyboard(tmp_path / "with" / "story", with_characters=True)
    cache = tmp_path / "cache"
    manifest, drawn, _ = render(source, cache, models, adapter, cli_env)
    assert (manifest["status"] == "ok").all(), manifest["error"].tolist()
    named = manifest["characters"].fillna("").to_dict()
    assert named == {**dict.fromkeys(NOBODY, ""), **USING}
    without = storyboard(tmp_path / "without" / "story", with_characters=False)
    _, plain, _ = render(without, tmp_path / "cache-plain", models, adapter, cli_env)
    for scene_id in NOBODY:
        assert drawn[scene_id] == plain[scene_id], f"{scene_id} names nobody: no adapter"
    for scene_id in USING:
        assert drawn[scene_id] != plain[scene_id], f"{scene_id} is drawn from its references"
    picture(source / "mia.png", (20, 200, 60))
    _, redrawn, report = render(source, cache, models, adapter, cli_env)
    changed = {scene_id for scene_id in SCENES if redrawn[scene_id] != drawn[scene_id]}
    assert changed == {"river"}, "a new reference re-renders exactly the scenes that use it"
    assert report["cache_hits"] == 2 * (len(SCENES) - 1)


def test_without_an_adapter_the_manifest_says_the_pictures_ignore_the_references(
    tmp_path: Path, models: Models, cli_env: dict[str, str]
) -> None:
    source = storyboard(tmp_path / "story", with_characters=True)
    local = {"image_model": str(models.sd), "device": "cpu", "steps": 2, "frames": 4}
    local |= {"clip_width": 64, "clip_height": 64}
    config = {"generation": {"local": local}, "assembly": {"width": 64, "height": 64, "fps": 8}}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(config))
    cache = share_readings(tmp_path / "cache")
    env = {**cli_env, "HF_HUB_OFFLINE": "1", "STORYBOARD_CACHE_DIR": str(cache)}
    args = ["run", str(source), "--out", str(tmp_path / "out"), "--backend", "local"]
    result = run_cli(
        [*args, "--only", "dawn", "--config", str(tmp_path / "local.yaml")], env, tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "draws without reference pictures" in result.stdout + result.stderr
    row = read_manifest(tmp_path / "out").set_index("scene_id").loc["dawn"]
    assert row["characters"] == "Leo" and "without its characters' reference" in row["note"]


def test_characters_are_those_a_scene_lists_or_names_in_order_of_first_mention() -> None:
    story = StoryboardSpec.model_validate(
        {
            "characters": CHARACTERS,
            "scenes": [{"id": "listed", "characters": ["Mia"]}],
        }
    )
    said = "The elephant calf splashes while the lion watches; Leo yawns."
    assert scene_characters(story, "any", said) == ("Mia", "Leo")
    assert scene_characters(story, "any", "The lions rest, the elephants drink") == ()
    assert scene_characters(story, "listed", "the lion") == ("Mia",)


@pytest.mark.parametrize(
    ("reference", "make", "said"),
    [
        ("gone.png", None, "not found"),
        ("../outside.png", "outside", "outside the storyboard's folder"),
        ("notes.png", "text", "not a picture"),
        ("huge.png", "huge", "over 4096 px"),
        ("heavy.png", "heavy", "over 20 MB"),
        ("moving.gif", "gif", "GIF picture; references are PNG, JPEG or WebP"),
    ],
)
def test_a_bad_reference_is_one_line_before_any_work(
    tmp_path: Path, reference: str, make: str | None, said: str
) -> None:
    folder = tmp_path / "story"
    folder.mkdir()
    if make == "outside":
        picture(tmp_path / "outside.png", (1, 2, 3))
    elif make == "text":
        (folder / reference).write_text("a note, not a picture")
    elif make == "huge":
        picture(folder / reference, (1, 2, 3), size=(4097, 2))
    elif make == "gif":
        Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / reference, format="GIF")
    elif make == "heavy":
        (folder / reference).write_bytes(b"\0" * (20 * 1024 * 1024 + 1))
    story = StoryboardSpec.model_validate(
        {"characters": [{"name": "Leo", "references": [reference]}]}
    )
    with pytest.raises(ConfigurationError, match=said) as raised:
        check_references(folder, story, "story")
    assert "\n" not in str(raised.value) and "Leo" in str(raised.value)


def test_a_scene_naming_an_unknown_character_is_refused_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "storyboard.yaml"
    path.write_text(yaml.safe_dump({"scenes": [{"id": "dawn", "characters": ["Max"]}]}))
    with pytest.raises(ConfigurationError, match="no character named Max"):
        load_storyboard_spec(path)


def test_a_characters_lora_joins_the_pictures_of_the_scenes_that_name_it(tmp_path: Path) -> None:
    leo = {**CHARACTERS[0], "lora": "leo-lora.safetensors"}
    story = StoryboardSpec.model_validate({"characters": [leo, CHARACTERS[1]]})
    heard = "A lion walks through a misty jungle at dawn."
    transcript = Transcript("en", 0.9, heard, heard, (), 3.0, False, 0.1)
    scene = recording(tmp_path / "dawn.ogg", 1)
    made = image_request(scene, transcript, story, GenerationSettings()).request
    assert [c.name for c in made.characters] == ["Leo"]
    assert [s.path for s in made.subjects] == [str(tmp_path / "leo-lora.safetensors")]
    storm = replace(transcript, text="Storm clouds gather.", english_text="Storm clouds gather.")
    alone = image_request(scene, storm, story, GenerationSettings()).request
    assert alone.characters == () and alone.subjects == ()


def test_references_and_loras_are_mirrored_from_an_s3_source(
    s3_endpoint: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"refs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    leo = {**CHARACTERS[0], "references": ["refs/leo.png"], "lora": "leo-lora.safetensors"}
    story = {"characters": [leo], "subjects": [{"path": "style.safetensors"}]}
    files = {
        "story/dawn.ogg": (DEMO_DIR / "dawn.ogg").read_bytes(),
        "story/storyboard.yaml": yaml.safe_dump(story).encode(),
        "story/refs/leo.png": picture(tmp_path / "leo.png", (200, 150, 40)).read_bytes(),
        "story/leo-lora.safetensors": b"weights",
        "story/style.safetensors": b"weights",
        "story/unrelated.png": b"not named: stays in the bucket",
    }
    for key, data in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    source = resolve_source(f"s3://{bucket}/story/", tmp_path / "cache")
    mirrored = {
        str(path.relative_to(source.folder))
        for path in source.folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }
    assert mirrored == {
        "dawn.ogg",
        "storyboard.yaml",
        "refs/leo.png",
        "leo-lora.safetensors",
        "style.safetensors",
    }
    check_references(source.folder, source.spec, source.described)


# -- a reference-editing image model (FLUX.1 Kontext): the references are its input pictures --


@pytest.fixture(scope="module", params=["kontext", "klein"])
def editing_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny FLUX.1 Kontext (one input picture: Leo's two references on one sheet) or FLUX.2
    klein (several input pictures: each as it is)."""
    save = save_kontext if request.param == "kontext" else save_klein
    return save(tmp_path_factory.mktemp(request.param) / request.param)


def test_a_reference_editing_model_draws_each_scene_from_its_characters_references(
    tmp_path: Path, editing_model: Path
) -> None:
    settings = LocalGenerationSettings(image_model=str(editing_model), device="cpu", steps=2)
    assert draws_references(GenerationSettings(local=settings)), "no adapter needed"
    backend = LocalDiffusersBackend(settings)
    sheet = (
        picture(tmp_path / "leo-1.png", (200, 150, 40)),
        picture(tmp_path / "leo-2.png", (9, 9, 9)),
    )
    leo = CharacterReference("Leo", tuple(str(path) for path in sheet), strength=0.6)
    small = picture(tmp_path / "mia.png", (90, 90, 200), size=(40, 30))  # FLUX.2 takes 64 px up
    mia = CharacterReference("Mia", (str(small),))
    other_leo = replace(leo, references=(str(picture(tmp_path / "leo-3.png", (20, 200, 60))),))

    def request(*characters: CharacterReference) -> ImageRequest:
        return ImageRequest(
            prompt="the lion walks at dawn",
            negative_prompt="",
            model="kontext",
            seed=7,
            cfg_scale=3.5,
            sampler="",
            steps=2,
            width=64,
            height=64,
            characters=characters,
        )

    def drawn(*characters: CharacterReference) -> bytes:
        return backend.generate_image(request(*characters)).data

    pictures = {
        "nobody": drawn(),
        "leo": drawn(leo),
        "another leo": drawn(other_leo),
        "mia": drawn(mia),
        "leo and mia": drawn(leo, mia),
    }
    assert len(set(pictures.values())) == len(pictures), "each set of references its own picture"
    assert pictures["nobody"] == drawn(), "a scene naming nobody is a plain text-to-image call"
    with Image.open(io.BytesIO(pictures["leo"])) as image:
        assert image.size == (64, 64), "the scene's size (Kontext's own is a megapixel)"

    def key(*characters: CharacterReference) -> str:
        return json.dumps(backend.image_fingerprint(request(*characters)), sort_keys=True)

    assert key(leo) != key(other_leo), "the references' bytes are in the key"
    assert key(leo) == key(replace(leo, strength=0.9)), "strength is an adapter's, not here"
    assert "characters" not in key(), "a scene naming nobody keeps the key it always had"


def test_a_model_that_needs_an_input_picture_draws_a_scene_naming_nobody_on_a_blank_one() -> None:
    qwen = editing_references("QwenImageEditPlusPipeline")
    kontext = editing_references("FluxKontextPipeline")
    assert qwen is not None and kontext is not None
    assert kontext.call_options(None, (), (64, 32)) == {}, "Kontext: a text-to-image call"
    blank = qwen.call_options(None, (), (64, 32))["image"]
    assert blank.size == (64, 32) and blank.getextrema() == ((255, 255),) * 3


def test_more_references_than_a_model_takes_are_laid_side_by_side_in_order() -> None:
    red, blue = Image.new("RGB", (40, 20), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))
    sheet = reference_sheet([red, blue])
    assert sheet.size == (60, 20)
    assert sheet.getpixel((5, 5)) == (255, 0, 0) and sheet.getpixel((55, 5)) == (0, 0, 255)


def test_the_watcher_sees_a_reference_replaced_under_the_same_name(tmp_path: Path) -> None:
    source = storyboard(tmp_path / "story", with_characters=True)

    def fingerprint() -> str:
        (folder,), _ = storyboard_folders(open_storage(str(source.parent)).list(recursive=True))
        return folder.fingerprint

    before = fingerprint()
    (source / "notes.txt").write_text("not an input")
    assert fingerprint() == before
    picture(source / "mia.png", (20, 200, 60), size=(50, 50))
    assert fingerprint() != before, "a new picture under the old name is a change to render"
