"""The printable board: `storyboard.pdf`, the classic storyboard sheet, made with fpdf2.

Panels in a grid, two across and three down on A4 or US Letter portrait. Each panel shows the
scene's still (a grey box naming the status when it has none), its number and id, its span as
HH:MM:SS:FF at the storyboard's fps, its status, narration and prompt. The panel's text shrinks
from 9 pt to 6 pt to fit; what still does not fit continues in a notes row under the panel's
row (across pages when it must), so no text is ever cut off.

Text is set in DejaVu Sans when the machine has it (any script it covers); without a TTF font
it falls back to Helvetica, whose Latin-1 shows other characters as '?'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from clients.cache import write_bytes_atomic
from domain.scene import SceneOutcome, TimelineEntry
from tasks.board_sheet import (
    BAND_H,
    BLACK,
    COLUMNS,
    GAP,
    GREY_TEXT,
    MARGIN,
    PAD,
    PAGE_FORMATS,
    TIMECODE_H,
    PageSize,
    Sheet,
    blank_sheet,
    find_font,
)

TEXT_SIZES, NOTES_SIZE = (9.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.0), 8.0
"""Font sizes in points: a panel's text is tried largest first."""
STILL_MAX_PX = 900
"""Stills are scaled down to this before embedding (about 250 dpi at a panel's width)."""
AMBER = (190, 110, 0)
STATUS_COLOURS = {"ok": (40, 120, 60), "failed": (180, 30, 30), "blocked": AMBER, "filtered": AMBER}


@dataclass(frozen=True)
class BoardScene:
    """One panel of the board. `start_s`/`end_s` are None for a scene not on the timeline."""

    scene_id: str
    order: int
    start_s: float | None
    end_s: float | None
    status: str
    transcript: str
    prompt: str
    image: Path | None
    note: str = ""
    """Why the scene has no image, or what the user should know about it."""


def timecode(seconds: float, fps: float) -> str:
    """`seconds` as HH:MM:SS:FF at `fps` (non-drop-frame, as editors' timelines count)."""
    rate = max(1, round(fps))
    frames = max(0, round(seconds * fps))
    whole, frame = divmod(frames, rate)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}:{frame:02d}"


def line_height(size: float) -> float:
    return size * 25.4 / 72 * 1.25


def remainder(full: str, shown: Sequence[str]) -> str:
    """What of `full` follows its wrapped lines `shown` (all of it if they cannot be found)."""
    position = 0
    for line in shown:
        found = full.find(line.strip(), position)
        if found < 0:
            return full
        position = found + len(line.strip())
    return full[position:].strip()


@dataclass(frozen=True)
class Passage:
    """A piece of a panel's text: `label` names it in the notes, `prefix` starts it."""

    label: str
    prefix: str
    text: str
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class FittedText:
    size: float
    lines: list[tuple[str, tuple[int, int, int]]]
    overflow: list[str]
    """The notes paragraphs for what did not fit."""


def fit_passages(
    sheet: Sheet, passages: Sequence[Passage], width: float, height: float
) -> FittedText:
    """The passages at the largest size at which they all fit; else, at the smallest, as
    much as fits (each passage keeps up to two lines) and the rest as notes."""
    sheet.style(1.0)
    ems = sum(sheet.pdf.get_string_width(sheet.clean(p.prefix + p.text)) for p in passages)
    usable = width - 2 * sheet.pdf.c_margin
    for size in TEXT_SIZES:
        if size > TEXT_SIZES[-1] and ems * size / usable * line_height(size) > height:
            continue  # too long even if every line were filled to the edge
        wrapped = [sheet.wrap(p.prefix + p.text, width, size) for p in passages]
        if sum(map(len, wrapped)) * line_height(size) <= height:
            every = [
                (line, p.colour) for p, ls in zip(passages, wrapped, strict=True) for line in ls
            ]
            return FittedText(size, every, [])
    # `size` and `wrapped` are now the smallest size's
    capacity = int(height // line_height(size)) - 1
    kept: list[tuple[str, tuple[int, int, int]]] = []
    overflow: list[str] = []
    for index, (passage, passage_lines) in enumerate(zip(passages, wrapped, strict=True)):
        reserve = sum(min(len(later), 2) for later in wrapped[index + 1 :])
        take = max(0, min(len(passage_lines), capacity - len(kept) - reserve))
        kept += [(line, passage.colour) for line in passage_lines[:take]]
        if take == len(passage_lines):
            continue
        if take == 0:
            overflow.append(f"{passage.label}: {sheet.clean(passage.text)}")
        else:
            shown = sheet.clean(passage.prefix + passage.text)
            rest = remainder(shown, passage_lines[:take])
            overflow.append(f"{passage.label} (continued): {rest}")
    kept.append(("(continued in the notes)", GREY_TEXT))
    return FittedText(size, kept, overflow)


def draw_still(sheet: Sheet, scene: BoardScene, x: float, y: float) -> None:
    """The scene's image fitted into its box, or a grey box naming why there is none."""
    pdf, width, height = sheet.pdf, sheet.panel_w, sheet.image_h
    pdf.set_fill_color(235, 235, 235)
    pdf.rect(x, y, width, height, style="F")
    if scene.image is not None:
        try:
            pdf.image(still_of(scene.image), x=x, y=y, w=width, h=height, keep_aspect_ratio=True)
            return
        except (OSError, ValueError, Image.DecompressionBombError):
            pass
    pdf.set_fill_color(200, 200, 200)
    pdf.rect(x + PAD, y + PAD, width - 2 * PAD, height - 2 * PAD, style="F")
    sheet.style(14, bold=True, colour=GREY_TEXT)
    sheet.write(x, y + height / 2 - 6, width, 8, scene.status.replace("_", " ").upper(), "C")
    sheet.style(8, colour=GREY_TEXT)
    missing = "no image" if scene.image is None else "image unreadable"
    sheet.write(x, y + height / 2 + 2, width, 5, missing, "C")


def still_of(image: Path) -> Image.Image | str:
    """What the board embeds for `image`: a JPEG already small enough as it is (embedded
    without re-encoding), anything else decoded and made small."""
    with Image.open(image) as opened:
        if opened.format == "JPEG" and max(opened.size) <= STILL_MAX_PX:
            return str(image)
        still: Image.Image = opened.convert("RGB")
    still.thumbnail((STILL_MAX_PX, STILL_MAX_PX))
    return still


def draw_band(sheet: Sheet, scene: BoardScene, x: float, y: float) -> list[str]:
    """The title band (number, id, status); a note with the full id when it had to be cut."""
    pdf = sheet.pdf
    pdf.set_fill_color(225, 225, 225)
    pdf.rect(x, y, sheet.panel_w, BAND_H, style="F")
    status = scene.status.replace("_", " ").upper()
    sheet.style(7, bold=True, colour=STATUS_COLOURS.get(scene.status, GREY_TEXT))
    status_w = pdf.get_string_width(status) + 2 * pdf.c_margin
    sheet.write(x + sheet.panel_w - status_w, y, status_w, BAND_H, status, "R")
    name = f"{scene.order}  {scene.scene_id}"
    size, shown, shortened = sheet.fit_line(name, sheet.panel_w - status_w, TEXT_SIZES)
    sheet.style(size, bold=True)
    sheet.write(x, y, sheet.panel_w - status_w, BAND_H, shown)
    return [f"Scene id: {scene.scene_id}"] if shortened else []


def panel_passages(scene: BoardScene) -> list[Passage]:
    narration = scene.transcript.strip()
    passages = [
        Passage("Narration", "", narration or "(no narration)", BLACK if narration else GREY_TEXT),
        Passage("Prompt", "Prompt: ", scene.prompt.strip() or "(none)", GREY_TEXT),
    ]
    if scene.note.strip():
        passages.append(Passage("Note", "Note: ", scene.note.strip(), GREY_TEXT))
    return passages


def draw_panel(sheet: Sheet, scene: BoardScene, x: float, y: float, fps: float) -> list[str]:
    """One scene's panel at (x, y); the notes paragraphs for what did not fit in it."""
    notes = draw_band(sheet, scene, x, y)
    draw_still(sheet, scene, x, y + BAND_H)
    line_y = y + BAND_H + sheet.image_h
    if scene.start_s is None or scene.end_s is None:
        span, length = "not on the timeline", ""
    else:
        span = f"{timecode(scene.start_s, fps)} - {timecode(scene.end_s, fps)}"
        length = f"{scene.end_s - scene.start_s:.2f} s"
    sheet.style(7.5, colour=BLACK)
    sheet.write(x, line_y, sheet.panel_w, TIMECODE_H, span)
    sheet.write(x, line_y, sheet.panel_w, TIMECODE_H, length, "R")
    text_y = line_y + TIMECODE_H
    fitted = fit_passages(sheet, panel_passages(scene), sheet.panel_w, sheet.text_h)
    step = line_height(fitted.size)
    for index, (line, colour) in enumerate(fitted.lines):
        sheet.style(fitted.size, colour=colour)
        sheet.write(x, text_y + index * step, sheet.panel_w, step, line)
    sheet.pdf.set_draw_color(120, 120, 120)
    sheet.pdf.rect(x, y, sheet.panel_w, sheet.panel_h)
    return notes + fitted.overflow


def draw_notes(sheet: Sheet, notes: Sequence[tuple[str, list[str]]]) -> None:
    """The notes row: each scene's heading and paragraphs across the page's width, going on
    to the next page (under "Notes, continued") when the page is full."""
    step = line_height(NOTES_SIZE)
    lines: list[tuple[str, bool]] = [("Notes", True)]
    for heading, paragraphs in notes:
        lines.append((heading, True))
        for paragraph in paragraphs:
            lines += [(line, False) for line in sheet.wrap(paragraph, sheet.content_w, NOTES_SIZE)]
    if sheet.y + 3 * step > sheet.bottom:
        sheet.new_page()
    for line, bold in lines:
        if sheet.y + step > sheet.bottom:
            sheet.new_page()
            sheet.style(NOTES_SIZE, bold=True)
            sheet.write(MARGIN, sheet.y, sheet.content_w, step, "Notes, continued")
            sheet.y += step
        sheet.style(NOTES_SIZE, bold=bold)
        sheet.write(MARGIN, sheet.y, sheet.content_w, step, line)
        sheet.y += step
    sheet.y += GAP


def write_board(
    path: Path, title: str, scenes: Sequence[BoardScene], fps: float, page: PageSize
) -> int:
    """Write `scenes` as a storyboard sheet to `path` (atomically); the number of pages."""
    if page not in PAGE_FORMATS:
        raise ValueError(f"board page must be one of {sorted(PAGE_FORMATS)}, not {page!r}")
    sheet = blank_sheet(page, find_font())
    sheet.pdf.set_title(title)
    sheet.new_page()
    if not scenes:
        sheet.style(10, colour=GREY_TEXT)
        sheet.write(MARGIN, sheet.y, sheet.content_w, 6, "No scenes.")
    for first in range(0, len(scenes), COLUMNS):
        if sheet.y + sheet.panel_h > sheet.bottom:
            sheet.new_page()
        notes: list[tuple[str, list[str]]] = []
        for column, scene in enumerate(scenes[first : first + COLUMNS]):
            x = MARGIN + column * (sheet.panel_w + GAP)
            paragraphs = draw_panel(sheet, scene, x, sheet.y, fps)
            if paragraphs:
                notes.append((f"{scene.order}  {scene.scene_id}", paragraphs))
        sheet.y += sheet.panel_h + GAP
        if notes:
            draw_notes(sheet, notes)
    sheet.draw_headers(title)
    write_bytes_atomic(path, bytes(sheet.pdf.output()))
    return sheet.pdf.pages_count


def board_scenes(
    outcomes: Sequence[SceneOutcome], timeline: Sequence[TimelineEntry]
) -> list[BoardScene]:
    """The board's panels for a run's scenes, in order, with their images (the ones the run
    publishes, read where they were generated)."""
    spans = {entry.scene_id: entry for entry in timeline}
    panels: list[BoardScene] = []
    for outcome in outcomes:
        span = spans.get(outcome.scene_id)
        panels.append(
            BoardScene(
                scene_id=outcome.scene_id,
                order=outcome.recording.order,
                start_s=span.start_s if span else None,
                end_s=span.end_s if span else None,
                status=outcome.status.value,
                transcript=outcome.transcript.text if outcome.transcript else "",
                prompt=outcome.prompt,
                image=outcome.media.image_path if outcome.media else None,
                note=outcome.error or outcome.note,
            )
        )
    return panels
