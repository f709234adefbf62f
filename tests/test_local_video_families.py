"""Text-steered motion on `--backend local`: tiny random-weight Wan (2.1 with its CLIP image
encoder, 2.2 TI2V without) and LTX-Video image-to-video pipelines, saved by diffusers' own
`save_pretrained` (testkit/fakes/tiny_video_pipelines.py), render a storyboard whose scenes
last 3 s and 9 s with clips as long as each scene, told the scene's motion."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import av
import pandas as pd
import pytest
import yaml
from PIL import Image

from clients.generation.local.backend import LocalDiffusersBackend
from clients.generation.local.clips import plan_clip
from clients.generation.local.video_families import LTX, WAN_21, WAN_22_TI2V, VideoFamily, recognise
from configs.settings import LocalGenerationSettings, Settings
from domain.errors import ConfigurationError
from domain.media import ClipRequest
from domain.storyboard import SceneSpec, StoryboardSpec
from tasks.preflight import motion_text_unread
from testkit.fakes.tiny_pipelines import Models
from testkit.fakes.tiny_video_pipelines import (
    ltx_pipeline,
    save_transformer_lora,
    save_video_pipeline,
    wan_pipeline,
)
from testkit.sources import make_source
from tests.helpers import assert_clean, read_manifest, run_cli, share_readings

pytest.importorskip("diffusers", reason="--backend local needs the `local` extra")
pytest.importorskip("ftfy", reason="Wan's prompt cleaning needs the `local` extra")

CLIP_WIDTH, CLIP_HEIGHT = 64, 32
LONG_S = 9.0
MOTION_STYLE = "gentle handheld camera"
DAWN_MOTION = "slow dolly in, the lion turns its head"


@pytest.fixture(scope="module")
def video_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-video-models")
    wan22 = wan_pipeline(image_encoder=False)
    return {
        "wan21": save_video_pipeline(wan_pipeline(), root / "wan21"),
        "wan22": save_video_pipeline(wan22, root / "wan22"),
        "wan22-lora": save_transformer_lora(wan22, root / "wan22-lora.safetensors"),
        "ltx": save_video_pipeline(ltx_pipeline(), root / "ltx"),
    }


def storyboard(folder: Path, dawn_motion: str) -> Path:
    """dawn (its 3-s narration) with its own motion, night lasting 9 s."""
    spec = {
        "title": "Motion",
        "seed": 5,
        "motion_style": MOTION_STYLE,
        "negative_prompt": "blurry",
        "scenes": [
            {"id": "dawn", "motion": dawn_motion},
            {"id": "night", "duration": LONG_S},
        ],
    }
    return make_source(folder, {"dawn": "dawn.ogg", "night": "night.ogg"}, spec)


def render(
    source: Path, video: Path, models: Models, cache: Path, cli_env: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    local = {
        "image_model": str(models.sd),
        "video_model": str(video),
        "device": "cpu",
        "steps": 2,
        "clip_width": CLIP_WIDTH,
        "clip_height": CLIP_HEIGHT,
        "clip_steps": 2,
    }
    config = {
        "generation": {"local": local},
        "assembly": {"width": 128, "height": 64, "fps": 12, "render_workers": 1},
    }
    config_path = source.parent / f"{video.name}.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    target = source.parent / f"out-{video.name}"
    env = {**cli_env, "HF_HUB_OFFLINE": "1", "STORYBOARD_CACHE_DIR": str(share_readings(cache))}
    args = ["run", str(source), "--out", str(target), "--backend", "local"]
    result = run_cli([*args, "--config", str(config_path)], env, source.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_clean(result)
    report = json.loads((target / "run.json").read_text())
    return read_manifest(target).set_index("scene_id"), {**report, "target": target}


def clip_frames_and_rate(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)), float(stream.average_rate or 0)


def expected_frames(family: VideoFamily, seconds: float) -> tuple[int, int]:
    """(frames, clips) a scene of `seconds` gets: at the family's fps, on its frame rule."""
    wanted = math.ceil(seconds * family.fps)
    if wanted <= family.max_frames:
        return family.frames_for(seconds, family.fps), 1
    clips = math.ceil((wanted - 1) / (family.max_frames - 1))
    each = family.accepted_frames(math.ceil((wanted - 1) / clips) + 1, at_least=True)
    return each + (clips - 1) * (each - 1), clips


@pytest.mark.parametrize(("name", "family"), [("wan21", WAN_21), ("ltx", LTX)])
def test_clips_follow_each_scenes_length_and_motion(
    name: str,
    family: VideoFamily,
    video_models: dict[str, Path],
    models: Models,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    source = storyboard(tmp_path / "story", DAWN_MOTION)
    cache = tmp_path / "cache"
    manifest, report = render(source, video_models[name], models, cache, cli_env)
    assert (manifest["status"] == "ok").all(), manifest["error"].tolist()
    assert (manifest["clip_model"] == str(video_models[name])).all()
    spans = {"dawn": manifest.loc["dawn", "audio_duration_s"], "night": LONG_S}
    for scene_id, seconds in spans.items():
        row = manifest.loc[scene_id]
        frames, _ = expected_frames(family, seconds)
        counted, rate = clip_frames_and_rate(report["target"] / row["clip_path"])
        assert (counted, rate) == (frames, family.fps), scene_id
        assert (row["clip_frames"], row["clip_fps"]) == (frames, family.fps)
        assert counted / rate >= seconds, "the clip covers the whole scene"
        span = row["end_s"] - row["start_s"]
        assert span == pytest.approx(seconds, abs=1 / 12 + 1e-6), "spans follow the narration"
    assert DAWN_MOTION in manifest.loc["dawn", "motion_prompt"]
    assert MOTION_STYLE in manifest.loc["night", "motion_prompt"]
    assert DAWN_MOTION not in manifest.loc["night", "motion_prompt"]
    if name != "wan21":
        return
    assert expected_frames(family, LONG_S)[1] == 2, "the long scene is two clips continued"
    first = {s: (report["target"] / manifest.loc[s, "clip_path"]).read_bytes() for s in spans}
    pictures = {s: (report["target"] / manifest.loc[s, "image_path"]).read_bytes() for s in spans}
    spec = yaml.safe_load((source / "storyboard.yaml").read_text())
    spec["scenes"][0]["motion"] = "the camera pans left across the jungle"
    (source / "storyboard.yaml").write_text(yaml.safe_dump(spec))
    changed, rerun = render(source, video_models[name], models, cache, cli_env)
    assert rerun["cache_hits"] == 3, "both pictures and the continued clip come from the cache"
    assert changed["clip_frames"].tolist() == manifest["clip_frames"].tolist()
    clips = {s: (report["target"] / changed.loc[s, "clip_path"]).read_bytes() for s in spans}
    images = {s: (report["target"] / changed.loc[s, "image_path"]).read_bytes() for s in spans}
    assert clips["dawn"] != first["dawn"] and clips["night"] == first["night"]
    assert images == pictures, "a scene's motion never changes a picture"
    assert "pans left" in changed.loc["dawn", "motion_prompt"]


def clip_request(seed: int, span_s: float, prompt: str = "a lion walks") -> ClipRequest:
    picture = io.BytesIO()
    Image.new("RGB", (CLIP_WIDTH, CLIP_HEIGHT), (180, 120, 40)).save(picture, format="PNG")
    return ClipRequest(
        image=picture.getvalue(),
        seed=seed,
        cfg_scale=1.8,
        motion_bucket_id=127,
        prompt=prompt,
        negative_prompt="blurry",
        span_s=span_s,
    )


def wan22_settings(models: Models, video: Path, **more: Any) -> LocalGenerationSettings:
    """The tiny SD pipeline's pictures animated by `video` on the CPU, at the tests' clip size."""
    return LocalGenerationSettings(
        image_model=str(models.sd),
        video_model=str(video),
        device="cpu",
        clip_width=CLIP_WIDTH,
        clip_height=CLIP_HEIGHT,
        **more,
    )


def test_wan_22_without_an_image_encoder_makes_the_same_bytes_from_the_same_seed(
    video_models: dict[str, Path], models: Models
) -> None:
    assert recognise(video_models["wan22"]) is WAN_22_TI2V
    assert recognise(video_models["wan21"]) is WAN_21
    settings = wan22_settings(models, video_models["wan22"], clip_steps=2)
    clips = [LocalDiffusersBackend(settings).generate_clip(clip_request(3, 2.0)) for _ in "ab"]
    assert clips[0].data == clips[1].data
    frames, rate = clip_frames_and_rate(write(clips[0].data, video_models["wan22"].parent))
    assert (frames, rate) == (WAN_22_TI2V.frames_for(2.0, 24), 24)
    other = LocalDiffusersBackend(settings).generate_clip(clip_request(3, 2.0, "a calm lake"))
    assert other.data != clips[0].data, "the motion prompt steers the clip"


def write(data: bytes, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clip.mp4"
    path.write_bytes(data)
    return path


def test_a_pipeline_that_does_not_animate_a_picture_is_refused(models: Models) -> None:
    with pytest.raises(ConfigurationError, match="not an image-to-video pipeline"):
        recognise(models.sd)


@pytest.mark.parametrize("cache", ["first_block", "taylorseer"])
def test_each_cache_hook_renders_and_keys_its_clips_apart(
    cache: str, video_models: dict[str, Path], models: Models
) -> None:
    plain = wan22_settings(models, video_models["wan22"], clip_steps=6, attention="sdpa")
    hooked = plain.model_copy(update={"cache": cache})
    request = clip_request(4, 1.0)
    backend = LocalDiffusersBackend(hooked)
    clip = backend.generate_clip(request)
    frames, rate = clip_frames_and_rate(write(clip.data, video_models["wan22"].parent / cache))
    assert (frames, rate) == (WAN_22_TI2V.frames_for(1.0, 24), 24)
    keys = [LocalDiffusersBackend(s).clip_fingerprint(request) for s in (plain, hooked)]
    assert keys[0] != keys[1], "a cache hook changes pixels, so it is part of the clip's key"


def test_a_distilled_video_lora_changes_the_clip_its_key_and_its_schedule(
    video_models: dict[str, Path], models: Models
) -> None:
    plain = wan22_settings(models, video_models["wan22"], clip_steps=3)
    lora = str(video_models["wan22-lora"])
    distilled = plain.model_copy(
        update={"video_lora": lora, "video_lora_steps": 2, "video_lora_guidance": 1.0}
    )
    request = clip_request(6, 1.0)
    backends = [LocalDiffusersBackend(s) for s in (plain, distilled)]
    plans = [plan_clip(WAN_22_TI2V, request, s) for s in (plain, distilled)]
    assert [(p.steps, p.guidance) for p in plans] == [(3, WAN_22_TI2V.guidance), (2, 1.0)]
    keys = [backend.clip_fingerprint(request) for backend in backends]
    assert keys[0] != keys[1]
    clips = [backend.generate_clip(request).data for backend in backends]
    assert clips[0] != clips[1]
    missing = distilled.model_copy(update={"video_lora": lora + ".gone"})
    with pytest.raises(ConfigurationError, match=r"video_lora .*no such file"):
        LocalDiffusersBackend(missing).clip_fingerprint(request)


def test_a_storyboard_describing_motion_is_told_when_its_clips_cannot_read_it(
    video_models: dict[str, Path], models: Models
) -> None:
    spec = StoryboardSpec(scenes=(SceneSpec(id="dawn", motion="the lion turns its head"),))
    settings = Settings()
    assert "draft backend's clips follow the picture alone" in str(
        motion_text_unread("draft", settings, spec)
    )
    for video, said in ((models.svd, True), (video_models["ltx"], False)):
        local = settings.generation.local.model_copy(update={"video_model": str(video)})
        generation = settings.generation.model_copy(update={"local": local})
        with_video = settings.model_copy(update={"generation": generation})
        assert (motion_text_unread("local", with_video, spec) is not None) is said, video
    assert motion_text_unread("draft", settings, StoryboardSpec()) is None
