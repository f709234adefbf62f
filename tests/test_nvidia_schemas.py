"""The hosted models' request schemas: bodies built from them, settings checked against them."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.generation.nvidia import check_settings, check_storyboard, image_body, svd_input
from clients.generation.schemas import MODELS, SVD, fit_prompt, request_body
from configs.settings import GenerationSettings, load_settings
from domain.errors import ConfigurationError, GenerationError
from domain.media import ImageRequest
from domain.scene import Recording, Transcript
from domain.storyboard import StoryboardSpec
from tasks.prompt import image_request


def _request(model: str, **changes: object) -> ImageRequest:
    fields: dict[str, object] = dict(
        prompt="a lion at dawn",
        negative_prompt="blurry",
        model=model,
        seed=1234,
        cfg_scale=5.0,
        sampler="K_DPM_2_ANCESTRAL",
        steps=25,
        width=1024,
        height=576,
    )
    return ImageRequest(**(fields | changes))  # type: ignore[arg-type]


def test_default_bodies_are_the_ones_sent_before_the_schemas_so_cached_results_stay_valid() -> None:
    assert image_body(_request("sdxl")) == {
        "text_prompts": [{"text": "a lion at dawn", "weight": 1}, {"text": "blurry", "weight": -1}],
        "cfg_scale": 5.0,
        "sampler": "K_DPM_2_ANCESTRAL",
        "seed": 1234,
        "steps": 25,
        "width": 1024,
        "height": 1024,
        "samples": 1,
    }
    assert image_body(_request("sd3-medium")) == {
        "prompt": "a lion at dawn",
        "negative_prompt": "blurry",
        "aspect_ratio": "16:9",
        "cfg_scale": 5.0,
        "steps": 25,
        "seed": 1234,
        "mode": "text-to-image",
        "output_format": "jpeg",
    }
    schnell = image_body(_request("flux.1-schnell", cfg_scale=0.0, steps=4))
    assert schnell == {
        "prompt": "a lion at dawn",
        "width": 1344,
        "height": 768,
        "cfg_scale": 0.0,
        "steps": 4,
        "seed": 1234,
        "mode": "base",
        "samples": 1,
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"cfg_scale": 12},
            "generation.cfg_scale: 12.0 is refused by"
            " stabilityai/stable-diffusion-xl (cfg_scale must be above 1 and at most 9)",
        ),
        ({"cfg_scale": 1}, "cfg_scale must be above 1 and at most 9"),
        (
            {"steps": 4},
            "generation.steps: 4 is refused by stabilityai/stable-diffusion-xl"
            " (steps must be 5 to 100)",
        ),
        (
            {"svd_cfg_scale": 0.5},
            "generation.svd_cfg_scale: 0.5 is refused by"
            " stabilityai/stable-video-diffusion (cfg_scale must be above 1 and at most 9)",
        ),
        ({"motion_bucket_id": 200}, "motion_bucket_id must be only 127"),
        ({"image_model": "flux.1-schnell", "steps": 8}, "steps must be 1 to 4"),
        ({"image_model": "flux.1-schnell", "cfg_scale": 3.5}, "cfg_scale must be only 0"),
        ({"fallback_models": ["flux.1-schnell"], "steps": 30}, "flux.1-schnell (steps must be"),
    ],
)
def test_a_value_a_hosted_model_refuses_is_a_configuration_error(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_settings(load_settings(None, {"generation": settings}).generation)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_values_inside_every_range_pass_and_an_unset_value_takes_the_models_default() -> None:
    for edge in ({"cfg_scale": 9}, {"cfg_scale": 1.01}, {"steps": 5}, {"steps": 100}):
        check_settings(load_settings(None, {"generation": edge}).generation)
    check_settings(GenerationSettings(image_model="flux.1-schnell"))
    check_settings(GenerationSettings(fallback_models=("flux.1-schnell", "sd3-medium")))


def test_a_storyboard_asking_svd_for_another_motion_is_refused_for_the_hosted_backend() -> None:
    spec = StoryboardSpec.model_validate({"scenes": [{"id": "a", "motion_bucket_id": 180}]})
    with pytest.raises(ConfigurationError, match="scene 'a': motion_bucket_id 180 is refused"):
        check_storyboard(GenerationSettings(), spec)
    with pytest.raises(ConfigurationError, match=r"flux\.1-schnell"):
        check_storyboard(
            GenerationSettings(steps=25),
            StoryboardSpec.model_validate({"image_model": "flux.1-schnell"}),
        )


def test_schnell_from_the_storyboard_gets_its_own_defaults(tmp_path: Path) -> None:
    recording = Recording("a", 1, tmp_path / "a.wav", "file:///a.wav", "0" * 64)
    transcript = Transcript("en", 1.0, "a lion", "a lion", (), 1.0, False, 0.1)
    spec = StoryboardSpec.model_validate({"image_model": "flux.1-schnell"})
    made = image_request(recording, transcript, spec, GenerationSettings())
    assert (made.request.cfg_scale, made.request.steps) == (0.0, 4)
    image_body(made.request)  # accepted by its schema


def test_a_body_the_model_refuses_is_never_built() -> None:
    with pytest.raises(GenerationError, match="seed 4294967296 must be 0 to 4294967295"):
        request_body(MODELS["sdxl"], {"prompt": "x", "seed": 2**32})
    with pytest.raises(GenerationError, match="steps True"):
        request_body(MODELS["sdxl"], {"prompt": "x", "seed": 1, "steps": True})
    with pytest.raises(GenerationError, match="motion_bucket_id"):
        request_body(SVD, {"seed": 1, "motion_bucket_id": 90})


def test_prompts_over_a_models_limit_are_shortened_at_a_word_boundary_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    words = "lion " * 2_500
    body = request_body(MODELS["sd3-medium"], {"prompt": "a lion", "negative_prompt": words})
    negative = body["negative_prompt"]
    assert len(negative) <= 10_000 and negative.endswith("lion") and words.startswith(negative)
    assert "negative_prompt shortened" in caplog.text
    assert fit_prompt("short", 10) == "short"


def test_svd_input_fits_inline_at_quality_80_or_better() -> None:
    import io

    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(3).integers(0, 255, (576, 1024, 3), dtype=np.uint8)
    busy, plain = Image.fromarray(noise), Image.new("RGB", (1024, 576), (40, 90, 160))
    for image, inline in ((plain, True), (busy, False)):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data, encoded = svd_input(buffer.getvalue())
        assert (len(encoded) <= 180_000) is inline
        assert Image.open(io.BytesIO(data)).size == (1024, 576)
