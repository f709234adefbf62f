"""The board's sheet: an fpdf2 document with the board's geometry and font, and where the next
row goes (`tasks/board.py` draws the panels on it).

Reading the font's two TrueType files takes fpdf2 about a third of a second, a share of a retake
worth taking off its path: `prepare_sheet` makes a blank sheet ahead (the warm-up does while the
run's Prefect server starts, `tasks/warm_up.py`) and the next board drawn in this process with
the same page and font starts from it (`blank_sheet`).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PageSize = Literal["a4", "letter"]
PAGE_FORMATS: dict[str, str] = {"a4": "A4", "letter": "Letter"}

COLUMNS, ROWS = 2, 3
MARGIN, HEADER_H, GAP, PAD = 10.0, 10.0, 5.0, 1.5
BAND_H, TIMECODE_H = 6.0, 4.5
"""Millimetres: page margin, page header, space between panels, inner padding, the panel's
title band and its timecode line."""
TITLE_SIZES = (12.0, 11.0, 10.0, 9.0, 8.0, 7.0, 6.0)
GREY_TEXT, BLACK = (110, 110, 110), (0, 0, 0)
FONT_FOLDERS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@dataclass(frozen=True)
class BoardFont:
    regular: Path
    bold: Path


def find_font() -> BoardFont | None:
    """DejaVu Sans, regular and bold, from the system's fonts or matplotlib's; None if absent."""
    folders = [Path("/usr/share/fonts/truetype/dejavu")]
    matplotlib = importlib.util.find_spec("matplotlib")
    if matplotlib is not None and matplotlib.origin:
        folders.append(Path(matplotlib.origin).parent / "mpl-data" / "fonts" / "ttf")
    regulars = [folder / "DejaVuSans.ttf" for folder in folders]
    for root in FONT_FOLDERS:
        if root.is_dir():
            regulars += sorted(root.rglob("DejaVuSans.ttf"))
    for regular in regulars:
        if regular.is_file():
            bold = regular.with_name("DejaVuSans-Bold.ttf")
            return BoardFont(regular, bold if bold.is_file() else regular)
    return None


class Sheet:
    """The PDF being drawn, its geometry, its font and where the next row goes."""

    def __init__(self, page: PageSize, font: BoardFont | None) -> None:
        from fpdf import FPDF  # a third of a second to import: only when a board is drawn

        self.pdf = FPDF(orientation="portrait", unit="mm", format=PAGE_FORMATS[page])
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(MARGIN, MARGIN)
        self.pdf.set_image_filter("DCTDecode")
        self.pdf.alias_nb_pages("")  # "{nb}" in a narration stays as written
        self.unicode = font is not None
        self.family = "dejavu" if font is not None else "helvetica"
        if font is not None:
            self.pdf.add_font(self.family, "", font.regular)
            self.pdf.add_font(self.family, "B", font.bold)
        self.content_w = self.pdf.w - 2 * MARGIN
        self.panel_w = (self.content_w - (COLUMNS - 1) * GAP) / COLUMNS
        self.panel_h = (self.pdf.h - 2 * MARGIN - HEADER_H - (ROWS - 1) * GAP) / ROWS
        self.image_h = min(self.panel_w * 9 / 16, self.panel_h * 0.55)
        self.text_h = self.panel_h - BAND_H - self.image_h - TIMECODE_H - PAD
        self.bottom = self.pdf.h - MARGIN
        self.y = MARGIN + HEADER_H

    def clean(self, text: str) -> str:
        """`text` as the font can show it: Helvetica's Latin-1, '?' for anything else."""
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def style(self, size: float, bold: bool = False, colour: tuple[int, int, int] = BLACK) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        self.pdf.set_text_color(*colour)

    def wrap(self, text: str, width: float, size: float, bold: bool = False) -> list[str]:
        """`text` broken into the lines that fit `width` at `size`."""
        self.style(size, bold)
        lines = self.pdf.multi_cell(width, 1, self.clean(text), dry_run=True, output="LINES")
        assert isinstance(lines, list)
        return [str(line) for line in lines]

    def write(self, x: float, y: float, w: float, h: float, text: str, align: str = "L") -> None:
        self.pdf.set_xy(x, y)
        self.pdf.cell(w, h, self.clean(text), align=align)

    def fit_line(self, text: str, width: float, sizes: Sequence[float]) -> tuple[float, str, bool]:
        """The largest of `sizes` at which bold `text` fits `width`; at the smallest, `text`
        shortened to fit with '...' and True (shortened)."""
        text = self.clean(text)
        for size in sizes:
            self.style(size, bold=True)
            if self.pdf.get_string_width(text) + 2 * self.pdf.c_margin <= width:
                return size, text, False
        while text and self.pdf.get_string_width(text + "...") + 2 * self.pdf.c_margin > width:
            text = text[:-1]
        return sizes[-1], text + "...", True

    def new_page(self) -> None:
        self.pdf.add_page()
        self.y = MARGIN + HEADER_H

    def draw_headers(self, title: str) -> None:
        """The title and "page n/m" on every page, once the number of pages is known."""
        total = self.pdf.pages_count
        label_w = 30.0
        size, shown, _ = self.fit_line(title, self.content_w - label_w, TITLE_SIZES)
        for number in range(1, total + 1):
            self.pdf.page = number
            self.style(size, bold=True)
            self.write(MARGIN, MARGIN, self.content_w - label_w, 6, shown)
            self.style(8, colour=GREY_TEXT)
            self.write(
                self.pdf.w - MARGIN - label_w, MARGIN, label_w, 6, f"page {number}/{total}", "R"
            )
            self.pdf.set_draw_color(160, 160, 160)
            self.pdf.line(MARGIN, MARGIN + 7, self.pdf.w - MARGIN, MARGIN + 7)


_prepared: dict[tuple[PageSize, BoardFont | None], Sheet] = {}
_prepared_lock = threading.Lock()


def prepare_sheet(page: PageSize, font: BoardFont | None) -> None:
    """A blank sheet of `page` in `font`, made now for the next board this process draws."""
    sheet = Sheet(page, font)
    with _prepared_lock:
        _prepared.setdefault((page, font), sheet)


def blank_sheet(page: PageSize, font: BoardFont | None) -> Sheet:
    """A blank sheet of `page` in `font`: the one prepared ahead, else a new one."""
    with _prepared_lock:
        prepared = _prepared.pop((page, font), None)
    return prepared or Sheet(page, font)
