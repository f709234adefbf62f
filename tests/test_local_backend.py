"""`storyboard run --backend local` end to end on the CPU, offline, with tiny random-weight
diffusers pipelines (testkit/fakes/tiny_pipelines.py) saved in their standard folder layout: the
same loading, LoRA and video code paths as with the real models, in seconds."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from clients.generation.local.backend import LocalDiffusersBackend, pipeline_size
from clients.media.ffmpeg import probe
from configs.settings import LocalGenerationSettings
from domain.errors import ConfigurationError, GenerationError
from domain.media import ClipRequest, ImageRequest, Subject
from testkit.fakes import tiny_pipelines
from testkit.fakes.tiny_pipelines import Models
from testkit.sources import make_source
from tests.helpers import assert_clean, read_manifest, run_cli, share_readings

pytest.importorskip("diffusers", reason="--backend local needs the `local` extra")
pytest.importorskip("peft", reason="LoRA subjects need the `local` extra")

WIDTH, HEIGHT = 128, 64
"""The storyboard's frame (`assembly`), and so the picture asked for: already multiples of 64,
the size the pipeline renders."""
CLIP_WIDTH, CLIP_HEIGHT = 128, 64
FRAMES = 4
FPS = 6
SCENE_FRAMES, SCENE_FPS = 6, 8
"""`frames:` and `fps:` of one scene in storyboard.yaml, against FRAMES and FPS for the
others."""
PROMPT = "a sks lion at dawn"
"""The scene prompt: it names the LoRA's trigger already, so that a subject changes the
picture through its weights alone, not through a longer prompt."""


@dataclass(frozen=True)
class Run:
    """One `storyboard run` and where it wrote."""

    result: subprocess.CompletedProcess[str]
    target: Path
    cache: Path

    @property
    def manifest(self) -> pd.DataFrame:
        return read_manifest(self.target)

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.target / "run.json").read_text())
        return data

    def _file(self, scene_id: str, column: str) -> Path:
        manifest = self.manifest
        row = manifest.loc[manifest["scene_id"] == scene_id].iloc[0]
        return self.target / str(row[column])

    def image(self, scene_id: str) -> Path:
        return self._file(scene_id, "image_path")

    def clip(self, scene_id: str) -> Path:
        return self._file(scene_id, "clip_path")


@pytest.fixture(scope="module")
def memo() -> dict[str, Run]:
    """Runs that several tests look at, made once (by the first test that needs each)."""
    return {}


def write_config(path: Path, models: Models, video: Path | None, **local: Any) -> Path:
    settings = {
        "image_model": str(models.sd),
        "video_model": None if video is None else str(video),
        "device": "cpu",
        "steps": 2,
        "clip_width": CLIP_WIDTH,
        "clip_height": CLIP_HEIGHT,
        "clip_steps": 2,
        "frames": FRAMES,
        "fps": FPS,
        "decode_chunk_size": 2,
        **local,
    }
    config = {
        "generation": {"local": settings},
        "assembly": {"width": WIDTH, "height": HEIGHT, "fps": 12, "render_workers": 1},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def storyboard_run(
    source: Path,
    target: Path,
    config: Path,
    cache: Path,
    cli_env: dict[str, str],
    shared_readings: bool = True,
) -> Run:
    if shared_readings:
        share_readings(cache)
    env = {**cli_env, "HF_HUB_OFFLINE": "1", "STORYBOARD_CACHE_DIR": str(cache)}
    args = ["run", str(source), "--out", str(target), "--backend", "local", "--config", str(config)]
    return Run(run_cli(args, env, source.parent), target, cache)


def once(memo: dict[str, Run], name: str, make: Callable[[], Run]) -> Run:
    if name not in memo:
        memo[name] = make()
    return memo[name]


def succeeded(run: Run) -> Run:
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert_clean(run.result)
    return run


@pytest.fixture
def plain_storyboard(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A fresh one-scene storyboard folder (dawn), no subjects."""

    def make(name: str) -> Path:
        spec = {"title": "Local", "seed": 7, "scenes": [{"id": "dawn", "prompt": PROMPT}]}
        return make_source(tmp_path_factory.mktemp(name) / "story", {"dawn": "dawn.ogg"}, spec)

    return make


@pytest.fixture
def first_run(
    memo: dict[str, Run],
    models: Models,
    plain_storyboard: Callable[[str], Path],
    cli_env: dict[str, str],
) -> Run:
    """The plain storyboard rendered with the SD pipeline and the SVD pipeline."""

    def make() -> Run:
        source = plain_storyboard("first")
        config = write_config(source.parent / "local.yaml", models, models.svd)
        return storyboard_run(
            source, source.parent / "out", config, source.parent / "cache", cli_env
        )

    return once(memo, "first", make)


@pytest.fixture
def subject_run(
    memo: dict[str, Run],
    models: Models,
    tmp_path_factory: pytest.TempPathFactory,
    cli_env: dict[str, str],
) -> Run:
    """The first run's storyboard with a LoRA subject, plus a second scene (night); dawn alone
    asks for SCENE_FRAMES frames at SCENE_FPS."""

    def make() -> Run:
        folder = tmp_path_factory.mktemp("subject")
        spec = {
            "title": "Local",
            "seed": 7,
            "subjects": [{"path": "lora.safetensors", "scale": 1.0, "trigger": "sks"}],
            "scenes": [
                {"id": "dawn", "prompt": PROMPT, "frames": SCENE_FRAMES, "fps": SCENE_FPS},
                {"id": "night"},
            ],
        }
        scenes = {"dawn": "dawn.ogg", "night": "night.ogg"}
        source = make_source(folder / "story", scenes, spec)
        shutil.copy(models.lora, source / "lora.safetensors")
        config = write_config(folder / "local.yaml", models, models.svd)
        return storyboard_run(source, folder / "out", config, folder / "cache", cli_env)

    return once(memo, "subject", make)


def image_request(*subjects: Subject, width: int = WIDTH, height: int = HEIGHT) -> ImageRequest:
    """A scene's picture request, as the prompt task makes it, for unit-level backend calls."""
    return ImageRequest(
        prompt="a lion at dawn",
        negative_prompt="blurry",
        model="sdxl",
        seed=11,
        cfg_scale=5.0,
        sampler="K_EULER_ANCESTRAL",
        steps=2,
        width=width,
        height=height,
        subjects=subjects,
    )


def frames_of(path: Path) -> list[np.ndarray[Any, Any]]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]


def starts_on_its_picture(run: Run, scene_id: str) -> float:
    """How closely the clip's first frame follows the picture (pixel correlation): about 0.9
    for a push-in over it (H.264 blurs the tiny models' fine noise), about 0 for a clip the
    video model made from it."""
    first = frames_of(run.clip(scene_id))[0]
    with Image.open(run.image(scene_id)) as image:
        picture = np.asarray(image.convert("RGB").resize(first.shape[1::-1])).astype(int)
    return float(np.corrcoef(first.ravel(), picture.ravel())[0, 1])


# -- one run ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_local_run_renders_pictures_and_clips_of_the_configured_shape(first_run: Run) -> None:
    succeeded(first_run)
    assert "backend: local" in first_run.result.stderr
    manifest = first_run.manifest
    assert manifest["scene_id"].tolist() == ["dawn"]
    assert manifest["status"].tolist() == ["ok"]
    assert set(manifest["backend"]) == {"local"}
    with Image.open(first_run.image("dawn")) as image:
        assert image.size == (WIDTH, HEIGHT)
        assert image.format == "PNG"
    clip = probe(first_run.clip("dawn"))
    assert (clip.width, clip.height, clip.frame_count) == (CLIP_WIDTH, CLIP_HEIGHT, FRAMES)
    assert clip.fps == pytest.approx(FPS)
    assert starts_on_its_picture(first_run, "dawn") < 0.5, "made by the video model, no push-in"
    report = first_run.report
    assert report["backend"] == "local"
    assert report["api_calls"] == 0
    assert report["cache_hits"] == 0
    assert report["scenes"]["ok"] == 1
    video = probe(first_run.target / "storyboard.mp4")
    assert (video.width, video.height) == (WIDTH, HEIGHT)


def test_the_same_seed_gives_the_same_bytes_from_another_process_s_pipelines(
    models: Models,
) -> None:
    def made_by_a_new_backend() -> tuple[bytes, bytes]:
        settings = LocalGenerationSettings(
            image_model=str(models.sd),
            video_model=str(models.svd),
            device="cpu",
            steps=2,
            clip_width=CLIP_WIDTH,
            clip_height=CLIP_HEIGHT,
            clip_steps=2,
            frames=FRAMES,
            decode_chunk_size=2,
        )
        backend = LocalDiffusersBackend(settings)
        image = backend.generate_image(image_request())
        clip = backend.generate_clip(ClipRequest(image.data, 11, 1.8, 127))
        return image.data, clip.data

    first, second = made_by_a_new_backend(), made_by_a_new_backend()
    assert first == second
    assert first[0].startswith(b"\x89PNG") and b"ftyp" in first[1][:64]


@pytest.mark.slow
def test_a_rerun_with_the_same_cache_generates_nothing(
    first_run: Run, models: Models, cli_env: dict[str, str]
) -> None:
    succeeded(first_run)
    source = first_run.target.parent / "story"
    again = succeeded(
        storyboard_run(
            source,
            first_run.target.parent / "again",
            first_run.target.parent / "local.yaml",
            first_run.cache,
            cli_env,
        )
    )
    report = again.report
    assert report["cache_hits"] == 2, "the image and the clip of the one scene"
    assert report["api_calls"] == 0
    assert again.image("dawn").read_bytes() == first_run.image("dawn").read_bytes()
    assert again.clip("dawn").read_bytes() == first_run.clip("dawn").read_bytes()


# -- storyboard.yaml: subjects and per-scene motion ----------------------------------------------


@pytest.mark.slow
def test_a_lora_subject_changes_the_picture(first_run: Run, subject_run: Run) -> None:
    succeeded(first_run)
    succeeded(subject_run)
    manifest = subject_run.manifest
    assert manifest["status"].tolist() == ["ok", "ok"]
    with_lora = subject_run.image("dawn").read_bytes()
    without = first_run.image("dawn").read_bytes()
    assert with_lora != without
    a = np.asarray(Image.open(io.BytesIO(with_lora)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(without)).convert("RGB")).astype(int)
    assert a.shape == b.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(a - b).mean() > 1.0, "the LoRA's weights should visibly change the picture"


@pytest.mark.slow
def test_a_scenes_own_frames_and_fps_change_its_clip_only(subject_run: Run) -> None:
    succeeded(subject_run)
    own, other = probe(subject_run.clip("dawn")), probe(subject_run.clip("night"))
    assert (own.frame_count, own.fps) == (SCENE_FRAMES, pytest.approx(SCENE_FPS))
    assert (other.frame_count, other.fps) == (FRAMES, pytest.approx(FPS))
    assert (own.width, own.height) == (other.width, other.height) == (CLIP_WIDTH, CLIP_HEIGHT)


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.slow  # cli_env starts the session's Prefect server
def test_a_missing_model_folder_is_exit_2_with_one_line_naming_it(
    tmp_path: Path, models: Models, cli_env: dict[str, str]
) -> None:
    source = make_source(tmp_path / "story", {"dawn": "dawn.ogg"}, {"title": "Missing"})
    missing = tmp_path / "models" / "no-such-pipeline"
    config = write_config(tmp_path / "local.yaml", models, missing)
    cache = tmp_path / "cache"
    run = storyboard_run(source, tmp_path / "out", config, cache, cli_env, shared_readings=False)
    assert run.result.returncode == 2, run.result.stdout + run.result.stderr
    assert_clean(run.result)
    lines = run.result.stderr.strip().splitlines()
    assert len(lines) == 1, run.result.stderr
    assert "video_model" in lines[0] and str(missing) in lines[0]
    assert not (tmp_path / "out" / "manifest.csv").exists(), "stopped before any work"
    assert not (tmp_path / "cache").exists()


def test_without_a_video_model_the_clip_is_a_push_in_over_the_picture(
    models: Models, tmp_path: Path
) -> None:
    settings = LocalGenerationSettings(
        image_model=str(models.sd),
        device="cpu",
        steps=2,
        clip_width=CLIP_WIDTH,
        clip_height=CLIP_HEIGHT,
        frames=FRAMES,
        fps=FPS,
    )
    backend = LocalDiffusersBackend(settings)
    picture = backend.generate_image(image_request())
    clip_path = tmp_path / "clip.mp4"
    clip_path.write_bytes(backend.generate_clip(ClipRequest(picture.data, 11, 1.8, 127)).data)
    clip = probe(clip_path)
    assert (clip.width, clip.height, clip.frame_count) == (CLIP_WIDTH, CLIP_HEIGHT, FRAMES)
    frames = frames_of(clip_path)
    with Image.open(io.BytesIO(picture.data)) as image:
        still = np.asarray(image.convert("RGB").resize(frames[0].shape[1::-1])).astype(int)
    correlation = float(np.corrcoef(frames[0].ravel(), still.ravel())[0, 1])
    assert correlation > 0.8, "the clip starts on the picture"
    assert np.abs(frames[-1] - frames[0]).mean() > 1.0, "and moves"


# -- other pipeline families -----------------------------------------------------------------


def test_an_sdxl_pipeline_renders_too(models: Models) -> None:
    settings = LocalGenerationSettings(image_model=str(models.sdxl), device="cpu", steps=2)
    backend = LocalDiffusersBackend(settings)
    odd = {"width": 150, "height": 100}  # not multiples of 64: the pipeline's size is used

    plain = backend.generate_image(image_request(**odd))
    assert plain.media_type == "image/png" and plain.api_calls == 0
    with Image.open(io.BytesIO(plain.data)) as image:
        assert image.size == pipeline_size(150, 100) == (128, 128)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert pixels.std() > 1.0, "a picture, not a flat fill"
    assert backend.generate_image(image_request(**odd)).data == plain.data
    subject = Subject(str(models.sdxl_lora), 1.0, "sks")
    assert backend.generate_image(image_request(subject, **odd)).data != plain.data
    again = backend.generate_image(image_request(**odd)).data
    assert again == plain.data, "the LoRA is switched off for storyboards without it"


def test_the_manifest_gets_the_prompt_as_sent_with_its_style_kept_within_clips_tokens(
    models: Models,
) -> None:
    """A narration longer than CLIP reads: the style (last) is kept and the narration is cut;
    the subject's trigger word leads it; what the pipeline was sent is what is recorded."""
    from clients.generation.local.prompts import CLIP_TOKENS

    settings = LocalGenerationSettings(image_model=str(models.sdxl), device="cpu", steps=2)
    backend = LocalDiffusersBackend(settings)
    style = "watercolour storyboard frame"
    narration = " ".join(["the old lion walks slowly through the misty jungle"] * 12)
    long = replace(
        image_request(Subject(str(models.sdxl_lora), 1.0, "sks")),
        prompt=f"{narration}, {style}",
        style=style,
    )
    image = backend.generate_image(long)
    assert image.prompt.startswith("sks, the old lion") and image.prompt.endswith(style)
    assert "style kept" in image.prompt_note
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(models.sdxl / "tokenizer"), local_files_only=True)
    assert len(tokenizer(image.prompt).input_ids) <= CLIP_TOKENS
    assert backend.image_fingerprint(long)["prompt"] == image.prompt
    short = backend.generate_image(image_request())
    assert (short.prompt, short.prompt_note) == ("a lion at dawn", "")


def test_tiny_tokenizer_is_a_real_bpe_one(tmp_path: Path) -> None:
    tokenizer = tiny_pipelines.clip_tokenizer(tmp_path / "tokenizer")
    assert tokenizer.tokenize("The sks lion") == ["the</w>", "sks</w>", "lion</w>"]
    ids = tokenizer("a lion").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    written = {path.name for path in (tmp_path / "tokenizer").iterdir()}
    assert written == {"merges.txt", "vocab.json"}


# -- faults refused in one line ------------------------------------------------------------------


def test_cpu_offload_on_without_a_gpu_renders_or_is_refused_as_a_configuration_error(
    models: Models,
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("about machines without a GPU")
    settings = LocalGenerationSettings(
        image_model=str(models.sd), device="cpu", steps=2, cpu_offload="on"
    )
    try:
        image = LocalDiffusersBackend(settings).generate_image(image_request())
    except ConfigurationError as exc:
        assert "cpu_offload" in str(exc)
    else:
        assert image.data


def test_a_lora_for_another_model_family_is_a_configuration_error(models: Models) -> None:
    backend = LocalDiffusersBackend(
        LocalGenerationSettings(image_model=str(models.sd), device="cpu", steps=2)
    )
    wrong = Subject(str(models.sdxl_lora), 1.0, "sks")  # an SDXL LoRA on an SD 1.x pipeline
    with pytest.raises(ConfigurationError, match=r"sdxl-lora\.safetensors"):
        backend.generate_image(image_request(wrong))
    assert backend.generate_image(image_request()).data, "the pipeline still renders without it"


def test_out_of_gpu_memory_retries_once_with_the_savers_then_fails_the_scene_in_one_line(
    models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    backend = LocalDiffusersBackend(
        LocalGenerationSettings(image_model=str(models.sd), device="cpu", steps=2)
    )
    made = backend._images_once
    failures = [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")]

    def short_of_memory_once(requests: list[ImageRequest]) -> list[Image.Image]:
        if failures:
            raise failures.pop()
        return made(requests)

    monkeypatch.setattr(backend, "_images_once", short_of_memory_once)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    assert backend.generate_image(image_request()).data.startswith(b"\x89PNG")
    assert backend._memory_savers

    def always_short(requests: list[ImageRequest]) -> list[Image.Image]:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(backend, "_images_once", always_short)
    with pytest.raises(GenerationError, match="out of GPU memory") as failed:
        backend.generate_image(image_request())
    assert "\n" not in str(failed.value)


def test_a_hub_id_is_found_in_the_hugging_face_cache_and_named_by_its_revision(
    models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--studio--tiny-sd"
    shutil.copytree(models.sd, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = LocalDiffusersBackend(
        LocalGenerationSettings(image_model="studio/tiny-sd", device="cpu", steps=2)
    )
    assert backend.image_model.identity == f"hub:studio/tiny-sd@{commit}"
    assert backend.generate_image(image_request()).data.startswith(b"\x89PNG")
    with pytest.raises(ConfigurationError, match="not in the Hugging Face cache"):
        LocalDiffusersBackend(LocalGenerationSettings(image_model="studio/absent", device="cpu"))
