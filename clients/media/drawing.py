"""Text and card drawing with Pillow, shared by the draft backend and the assembler."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

_FONT_CANDIDATES = {
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ),
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    ),
}


@cache
def font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans where the system has it (wide script coverage), else Pillow's own font."""
    for candidate in _FONT_CANDIDATES[bold]:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def text_width(text: str, typeface: Font) -> float:
    left, _, right, _ = typeface.getbbox(text)
    return float(right - left)


def wrap(text: str, typeface: Font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap; the last line ends in an ellipsis when the text does not fit."""
    lines: list[str] = []
    current = ""
    words = text.split()
    for index, word in enumerate(words):
        candidate = f"{current} {word}".strip()
        if text_width(candidate, typeface) <= max_width or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines:
            current = ""
            remaining = " ".join(words[index:])
            lines[-1] = _ellipsize(f"{lines[-1]} {remaining}", typeface, max_width)
            break
    if current:
        lines.append(current)
    return lines


def _ellipsize(text: str, typeface: Font, max_width: float) -> str:
    if text_width(text, typeface) <= max_width:
        return text
    while text and text_width(text + "…", typeface) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def fit_text(
    text: str, max_width: float, max_lines: int, sizes: tuple[int, ...], bold: bool = False
) -> tuple[Font, list[str]]:
    """The largest of `sizes` at which `text` wraps into `max_lines` without an ellipsis."""
    for size in sizes:
        typeface = font(size, bold)
        lines = wrap(text, typeface, max_width, max_lines)
        if not lines or not lines[-1].endswith("…"):
            return typeface, lines
    typeface = font(sizes[-1], bold)
    return typeface, wrap(text, typeface, max_width, max_lines)


def line_height(typeface: Font) -> int:
    _, top, _, bottom = typeface.getbbox("Ag")
    return int((bottom - top) * 1.3) + 1


def draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    typeface: Font,
    x: float,
    y: float,
    fill: RGB | tuple[int, int, int, int],
    *,
    centre_width: float | None = None,
    stroke: RGB | None = None,
) -> float:
    """Draw lines top-down from (x, y), centred within `centre_width` if given; returns new y."""
    step = line_height(typeface)
    for line in lines:
        offset = (centre_width - text_width(line, typeface)) / 2 if centre_width else 0.0
        draw.text(
            (x + offset, y),
            line,
            font=typeface,
            fill=fill,
            stroke_width=2 if stroke else 0,
            stroke_fill=stroke,
        )
        y += step
    return y


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` scaled to fill width x height, centred, the overflow cropped away."""
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def placeholder_card(width: int, height: int, heading: str, detail: str, label: str) -> Image.Image:
    """A plain card that says why a scene has no picture."""
    card = Image.new("RGB", (width, height), (34, 36, 42))
    draw = ImageDraw.Draw(card)
    margin = width // 16
    draw.rectangle(
        (margin // 2, margin // 2, width - margin // 2, height - margin // 2),
        outline=(120, 124, 135),
        width=max(2, width // 400),
    )
    heading_font, heading_lines = fit_text(
        heading, width - 2 * margin, 1, (height // 8, height // 11, height // 14), bold=True
    )
    detail_font, detail_lines = fit_text(
        detail, width - 2 * margin, 4, (height // 18, height // 24, height // 30)
    )
    block = line_height(heading_font) * len(heading_lines) + line_height(detail_font) * len(
        detail_lines
    )
    y = (height - block) / 2
    y = draw_lines(
        draw=draw,
        lines=heading_lines,
        typeface=heading_font,
        x=margin,
        y=y,
        fill=(240, 200, 90),
        centre_width=width - 2 * margin,
    )
    draw_lines(
        draw=draw,
        lines=detail_lines,
        typeface=detail_font,
        x=margin,
        y=y,
        fill=(215, 218, 225),
        centre_width=width - 2 * margin,
    )
    label_font = font(max(12, height // 28), bold=True)
    draw.text((margin, margin), label, font=label_font, fill=(160, 165, 175))
    return card
