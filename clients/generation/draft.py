"""The offline `draft` backend: storyboard panels drawn locally, clearly marked DRAFT.

Deterministic: the same request gives the same bytes. The panel shows the scene label, the
prompt and a palette drawn from the prompt's words; the clip is a slow zoom over the panel,
shaped like a Stable Video Diffusion clip (1024x576, 25 frames at 6 fps, H.264).
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
import re
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from clients.generation.backend import PUSH_IN, BackendKind
from clients.generation.ratelimit import RequestBudget
from clients.media.drawing import RGB, draw_lines, fit_text, font, line_height, text_width
from clients.media.video import CLIP_ENCODING, encode_frames, push_in_frames
from configs.settings import GenerationSettings
from domain.media import (
    SVD_FPS,
    SVD_FRAMES,
    SVD_HEIGHT,
    SVD_WIDTH,
    ClipRequest,
    GeneratedClip,
    GeneratedImage,
    ImageRequest,
)

# Hues (degrees) for words that carry a colour; other words get a hue from their hash.
_WORD_HUES = {
    "red": 0,
    "fire": 12,
    "sunset": 18,
    "dawn": 30,
    "orange": 30,
    "autumn": 28,
    "desert": 38,
    "sand": 42,
    "gold": 45,
    "golden": 45,
    "yellow": 52,
    "sun": 48,
    "lion": 38,
    "meadow": 90,
    "grass": 100,
    "green": 120,
    "forest": 130,
    "jungle": 135,
    "leaf": 110,
    "sea": 195,
    "ocean": 200,
    "river": 190,
    "water": 195,
    "sky": 205,
    "blue": 220,
    "ice": 190,
    "snow": 200,
    "night": 235,
    "moon": 240,
    "purple": 280,
    "violet": 275,
    "pink": 330,
    "rose": 340,
}
_GREY_WORDS = frozenset({"misty", "mist", "fog", "foggy", "smoke", "stone", "grey", "gray", "rain"})
_STOP_WORDS = frozenset(
    "a an the and or of in on at to with through into over under by for from is are was "  # noqa: SIM905
    "were its it this that as be".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def prompt_palette(prompt: str, colours: int = 5) -> list[RGB]:
    """Colours for a prompt: each significant word gives one, in the order the words come."""
    words = [word for word in _WORD.findall(prompt.casefold()) if word not in _STOP_WORDS]
    palette: list[RGB] = []
    for word in words or ["storyboard"]:
        digest = hashlib.sha256(word.encode()).digest()
        hue = _WORD_HUES.get(word, digest[0] * 360 / 256)
        saturation = 0.08 if word in _GREY_WORDS else 0.35 + digest[1] / 255 * 0.35
        lightness = 0.35 + digest[2] / 255 * 0.35
        r, g, b = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
        palette.append((round(r * 255), round(g * 255), round(b * 255)))
        if len(palette) == colours:
            break
    while len(palette) < colours:
        r, g, b = palette[len(palette) % len(palette)]
        palette.append((min(255, r + 30), min(255, g + 30), min(255, b + 30)))
    return palette


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _sky(palette: list[RGB], width: int, height: int) -> Image.Image:
    """The panel's background: a vertical gradient between two pale prompt colours."""
    sky_top, sky_bottom = _mix(palette[0], (245, 245, 250), 0.55), _mix(palette[1], (255,) * 3, 0.3)
    gradient = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top, bottom = np.array(sky_top, np.float32), np.array(sky_bottom, np.float32)
    sky = (top + (bottom - top) * gradient[..., None]).repeat(width, axis=1)
    return Image.fromarray(sky.astype(np.uint8))


def _draw_landscape(panel: Image.Image, rng: random.Random, palette: list[RGB], unit: int) -> None:
    """A sun and one ridge of hills per remaining palette colour, placed by `rng`."""
    width, height = panel.size
    draw = ImageDraw.Draw(panel)
    sun_x, sun_y = rng.uniform(0.15, 0.85) * width, rng.uniform(0.35, 0.5) * height
    radius = unit * 0.08
    draw.ellipse(
        (sun_x - radius, sun_y - radius, sun_x + radius, sun_y + radius),
        fill=_mix(palette[2], (255, 250, 230), 0.6),
    )
    for layer, colour in enumerate(palette[2:], start=1):
        base = height * (0.45 + 0.12 * layer)
        phase, frequency = rng.uniform(0, math.tau), rng.uniform(1.5, 3.5) / width
        amplitude = height * rng.uniform(0.03, 0.08)
        ridge = [
            (x, base - amplitude * math.sin(x * frequency * math.tau + phase))
            for x in range(0, width + 16, 16)
        ]
        draw.polygon(
            [*ridge, (width, height), (0, height)], fill=_mix(colour, (20, 20, 30), 0.15 * layer)
        )


def _stamp_draft(overlay: Image.Image, unit: int) -> None:
    """The large, tilted, translucent DRAFT stamp across the middle of the overlay."""
    width, height = overlay.size
    stamp_font = font(unit // 4, bold=True)
    stamp = "DRAFT"
    stamp_layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(stamp_layer).text(
        ((width - text_width(stamp, stamp_font)) / 2, height * 0.28),
        stamp,
        font=stamp_font,
        fill=(255, 255, 255, 90),
        stroke_width=4,
        stroke_fill=(200, 30, 30, 140),
    )
    overlay.alpha_composite(stamp_layer.rotate(12, resample=Image.Resampling.BICUBIC))


def _draw_header(
    ink: ImageDraw.ImageDraw,
    prompt: str,
    seed: int,
    label: str,
    palette: list[RGB],
    width: int,
    unit: int,
    margin: int,
) -> None:
    """The band across the top: the scene label, the prompt, the DRAFT note and the palette."""
    label_font = font(unit // 16, bold=True)
    label_width = text_width(label, label_font) + margin
    note_font = font(max(10, unit // 40))
    swatch = max(8, unit * 16 // 9 // 36)
    text_left = margin * 2 + label_width
    text_width_max = width - text_left - margin - len(palette) * (swatch + 4)
    caption_font, caption_lines = fit_text(
        prompt, text_width_max, 3, (unit // 22, unit // 26, unit // 32)
    )
    box_height = (
        max(
            line_height(caption_font) * max(1, len(caption_lines)) + line_height(note_font),
            line_height(label_font),
        )
        + margin
    )
    ink.rectangle((0, 0, width, box_height), fill=(250, 248, 240, 228))
    ink.rectangle(
        (margin, margin / 2, margin + label_width, margin / 2 + line_height(label_font)),
        fill=(20, 20, 25, 235),
    )
    ink.text((margin * 1.5, margin / 2 + 2), label, font=label_font, fill=(255, 255, 255, 255))
    y = draw_lines(
        draw=ink,
        lines=caption_lines,
        typeface=caption_font,
        x=text_left,
        y=margin / 2,
        fill=(25, 25, 30),
    )
    note = f"DRAFT · drawn offline, not AI-generated · seed {seed}"
    ink.text((text_left, y), note, font=note_font, fill=(150, 30, 30, 255))
    _draw_swatches(ink, palette, width, margin, swatch)


def _draw_swatches(
    ink: ImageDraw.ImageDraw, palette: list[RGB], width: int, margin: int, swatch: int
) -> None:
    """The prompt's palette as a row of outlined squares at the header's right end."""
    for index, colour in enumerate(palette):
        x = width - margin - (len(palette) - index) * (swatch + 4)
        ink.rectangle(
            (x, margin / 2, x + swatch, margin / 2 + swatch),
            fill=(*colour, 255),
            outline=(30, 30, 30, 255),
        )


def draw_panel(prompt: str, seed: int, label: str, width: int, height: int) -> Image.Image:
    """The draft storyboard panel for a prompt."""
    rng = random.Random(seed)
    palette = prompt_palette(prompt)
    panel = _sky(palette, width, height)
    unit = min(height, round(width * 9 / 16))  # type sizes follow the panel's narrow side
    _draw_landscape(panel, rng, palette, unit)

    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ink = ImageDraw.Draw(overlay)
    margin = max(8, unit * 16 // 9 // 32)
    _stamp_draft(overlay, unit)
    _draw_header(
        ink=ink,
        prompt=prompt,
        seed=seed,
        label=label or "SCENE",
        palette=palette,
        width=width,
        unit=unit,
        margin=margin,
    )
    ink.rectangle(
        (0, 0, width - 1, height - 1), outline=(15, 15, 15, 255), width=max(3, width // 200)
    )
    panel = Image.alpha_composite(panel.convert("RGBA"), overlay).convert("RGB")
    return panel


class DraftBackend:
    """Offline stand-in for the hosted models; every frame says DRAFT."""

    name = "draft"

    def image_fingerprint(self, request: ImageRequest) -> dict[str, Any]:
        return {**request.fingerprint(), "label": request.label}

    def generate_image(self, request: ImageRequest) -> GeneratedImage:
        panel = draw_panel(
            request.prompt, request.seed, request.label, request.width, request.height
        )
        buffer = io.BytesIO()
        panel.save(buffer, format="PNG", optimize=False)
        return GeneratedImage(
            data=buffer.getvalue(), media_type="image/png", seed=request.seed, api_calls=0
        )

    def image_model_name(self, request: ImageRequest) -> str:
        return self.name

    def clip_model_name(self) -> str:
        return PUSH_IN

    def clip_fingerprint(self, request: ClipRequest) -> dict[str, Any]:
        return request.fingerprint()

    def generate_clip(self, request: ClipRequest) -> GeneratedClip:
        image = Image.open(io.BytesIO(request.image))
        frames = push_in_frames(image, request.seed, SVD_FRAMES, SVD_WIDTH, SVD_HEIGHT)
        data = encode_frames(frames, SVD_FPS, CLIP_ENCODING)
        return GeneratedClip(data=data, seed=request.seed, api_calls=0)


def create(settings: GenerationSettings, limiter: RequestBudget) -> DraftBackend:
    return DraftBackend()


KIND = BackendKind(name="draft", create=create, paid=False)
