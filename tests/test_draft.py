from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clients.generation.draft import DraftBackend, prompt_palette
from clients.media.ffmpeg import probe
from domain.media import ClipRequest, ImageRequest

PROMPT = "A lion walks through a misty jungle at dawn, watercolor"


def _request(prompt: str = PROMPT, seed: int = 42, label: str = "Scene 1") -> ImageRequest:
    return ImageRequest(
        prompt=prompt,
        negative_prompt="",
        model="sdxl",
        seed=seed,
        cfg_scale=5.0,
        sampler="K_DPM_2_ANCESTRAL",
        steps=25,
        label=label,
    )


@pytest.fixture(scope="module")
def backend() -> DraftBackend:
    return DraftBackend()


def test_same_prompt_and_seed_give_the_same_image(backend: DraftBackend) -> None:
    assert backend.generate_image(_request()).data == backend.generate_image(_request()).data


def test_seed_and_prompt_change_the_image(backend: DraftBackend) -> None:
    base = backend.generate_image(_request()).data
    assert backend.generate_image(_request(seed=43)).data != base
    assert backend.generate_image(_request(prompt="A whale under the ice")).data != base


def test_panel_is_1024x576_and_marked_draft(backend: DraftBackend) -> None:
    image = backend.generate_image(_request())
    assert image.media_type == "image/png"
    assert image.api_calls == 0
    panel = Image.open(io.BytesIO(image.data))
    assert panel.size == (1024, 576)
    pixels = np.asarray(panel.convert("RGB")).astype(int)
    red_stamp = (pixels[..., 0] > 150) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)
    assert red_stamp.sum() > 500, "the red DRAFT stamp should be visible"


def test_palette_comes_from_the_prompt_words() -> None:
    jungle = prompt_palette("green jungle")
    assert prompt_palette("green jungle") == jungle
    assert prompt_palette("blue ocean night") != jungle
    red, green = prompt_palette("red")[0], prompt_palette("green")[0]
    assert red[0] > red[1] and green[1] > green[0]


def test_clip_has_the_shape_of_an_svd_clip(backend: DraftBackend, tmp_path: Path) -> None:
    image = backend.generate_image(_request())
    request = ClipRequest(image=image.data, seed=42, cfg_scale=1.8, motion_bucket_id=127)
    clip = backend.generate_clip(request)
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip.data)
    info = probe(path)
    assert (info.width, info.height, info.frame_count) == (1024, 576, 25)
    assert info.fps == pytest.approx(6.0)
    assert info.video_codec == "h264" and info.audio_codec is None
    assert backend.generate_clip(request).data == clip.data


def test_clip_moves(backend: DraftBackend, tmp_path: Path) -> None:
    import av

    image = backend.generate_image(_request())
    clip = backend.generate_clip(ClipRequest(image.data, 42, 1.8, 127))
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip.data)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    assert np.abs(frames[0] - frames[-1]).mean() > 2.0
