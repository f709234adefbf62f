"""The printable board (`storyboard.pdf`), read back with poppler's command-line tools:
pdfinfo for pages and page size, pdftotext for the text (cropped to a panel where it matters)
and pdftoppm to render every page."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageStat

import tasks.board as board
import tasks.board_sheet as sheets
from domain.scene import (
    GeneratedMedia,
    Recording,
    SceneOutcome,
    SceneStatus,
    TimelineEntry,
    Transcript,
)
from tasks.board import BoardScene, PageSize, board_scenes, timecode, write_board

POPPLER = ("pdfinfo", "pdftotext", "pdftoppm")
MM = 72 / 25.4
"""Points per millimetre: poppler's crop box is in points at its default 72 dpi."""

WRAPPED = (
    "A storm gathers over the harbour; fishermen haul their nets and race the rain back to "
    "the quay, where lanterns swing and the old keeper of the lighthouse watches them home."
)
LONG = " ".join(f"w{number:03d}" for number in range(1, 301))
"""1,500 characters of numbered words, so that a lost or repeated word shows."""


def poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"{tool} is missing: the board's tests read the PDF with poppler-utils "
            "(apt-get install poppler-utils; the Makefile installs it)"
        )
    return found


def run_tool(tool: str, *args: str | Path) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argument list
        [poppler(tool), *map(str, args)], capture_output=True, text=True, check=True
    )
    return result.stdout


def page_info(pdf: Path) -> tuple[int, str]:
    """The number of pages and the first page's size line, as pdfinfo says them."""
    info = run_tool("pdfinfo", pdf)
    pages = re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE)
    size = re.search(r"^Page size:\s+(.+)$", info, re.MULTILINE)
    assert pages and size, info
    return int(pages.group(1)), size.group(1)


def words(text: str) -> list[str]:
    return text.split()


def still(folder: Path, name: str, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).ellipse((20, 20, size[0] - 20, size[1] - 20), fill=(230, 200, 60))
    path = folder / name
    image.save(path)
    return path


def seven_scenes(folder: Path) -> list[BoardScene]:
    wide = still(folder, "wide.jpg", (1024, 576), (30, 80, 160))
    square = still(folder, "square.png", (512, 512), (120, 40, 90))
    tall = still(folder, "tall.jpg", (360, 640), (20, 120, 60))
    plain = [("intro", "Once upon a time.", wide), ("plain", "The end is near.", square)]
    return [
        BoardScene("opening", 1, 0.0, 4.2, "ok", "Der Löwe läuft.", "a lion at dawn", wide),
        BoardScene("harbour", 2, 4.2, 12.5, "ok", WRAPPED, "a stormy harbour", square),
        BoardScene("castle", 3, 12.5, 15.0, "failed", "It failed.", "a castle", None, "HTTP 500"),
        BoardScene("savanna", 4, 15.0, 75.0, "ok", LONG, "a savanna panorama", tall),
        BoardScene("silence", 5, 75.0, 78.0, "no_speech", "", "", None),
        *(
            BoardScene(scene_id, 6 + index, 78.0 + index, 79.0 + index, "ok", text, "p", image)
            for index, (scene_id, text, image) in enumerate(plain)
        ),
    ]


def panel_text(pdf: Path, page: PageSize, column: int, row: int) -> str:
    """The text inside one panel's rectangle on the first page."""
    sheet = sheets.Sheet(page, None)
    left = sheets.MARGIN + column * (sheet.panel_w + sheets.GAP)
    top = sheets.MARGIN + sheets.HEADER_H + row * (sheet.panel_h + sheets.GAP)
    crop = [round(value * MM) for value in (left, top, sheet.panel_w, sheet.panel_h)]
    return run_tool(
        "pdftotext",
        "-f",
        "1",
        "-l",
        "1",
        "-layout",
        "-x",
        crop[0],
        "-y",
        crop[1],
        "-W",
        crop[2],
        "-H",
        crop[3],
        pdf,
        "-",
    )


@pytest.mark.parametrize(("page", "size"), [("a4", "595.28 x 841.89"), ("letter", "612 x 792")])
def test_every_scene_is_on_the_board_and_no_narration_is_cut(
    tmp_path: Path, page: PageSize, size: str
) -> None:
    scenes = seven_scenes(tmp_path)
    pdf = tmp_path / "storyboard.pdf"
    pages = write_board(pdf, "The Harbour", scenes, 25.0, page)
    count, page_size = page_info(pdf)
    assert count == pages and page_size.startswith(size), (count, page_size)
    text = run_tool("pdftotext", "-layout", pdf, "-")
    for scene in scenes:
        assert scene.scene_id in text
    assert "FAILED" in text and "HTTP 500" in text
    assert "00:00:12:12 - 00:00:15:00" in text
    harbour = panel_text(pdf, page, column=1, row=0)
    assert " ".join(words(WRAPPED)) in " ".join(words(harbour)), harbour
    narration_lines = [
        line for line in harbour.splitlines() if set(words(line)) & set(words(WRAPPED))
    ]
    assert len(narration_lines) > 1, "the narration is wrapped over lines"
    assert "continued" not in harbour
    assert "continued in the notes" in panel_text(pdf, page, column=1, row=1)
    found = re.findall(r"\bw\d{3}\b", text)
    assert sorted(found) == words(LONG), "every word of the long narration, once"
    assert "Notes" in text and "w300" in text


def test_every_page_renders_to_an_image(tmp_path: Path) -> None:
    pdf = tmp_path / "storyboard.pdf"
    pages = write_board(pdf, "Rendered", seven_scenes(tmp_path), 25.0, "a4")
    run_tool("pdftoppm", "-r", "40", "-png", pdf, tmp_path / "page")
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) == pages >= 2
    for path in rendered:
        with Image.open(path) as image:
            assert abs(image.width - 331) <= 2 and abs(image.height - 468) <= 2
            darkest, lightest = image.convert("L").getextrema()
            assert darkest < 100 and lightest > 200, f"{path.name} is blank"
    with Image.open(rendered[0]) as first:
        red, green, blue = ImageStat.Stat(first.convert("RGB")).mean
        assert max(red, green, blue) - min(red, green, blue) > 3, "the stills are drawn"


def test_unicode_narration_round_trips(tmp_path: Path) -> None:
    if board.find_font() is None:
        pytest.fail("no DejaVu Sans on this machine: apt-get install fonts-dejavu-core")
    scenes = [
        BoardScene("de", 1, 0.0, 2.0, "ok", "Der Löwe läuft", "ein Löwe", None),
        BoardScene("ru", 2, 2.0, 4.0, "ok", "Лев идёт", "лев", None),
    ]
    pdf = tmp_path / "storyboard.pdf"
    write_board(pdf, "Der König — Король", scenes, 24.0, "a4")
    text = run_tool("pdftotext", "-layout", pdf, "-")
    for expected in ("Der Löwe läuft", "Лев идёт", "Der König — Король"):
        assert expected in text


def test_without_a_unicode_font_text_falls_back_to_latin_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board, "find_font", lambda: None)
    scenes = [BoardScene("mixed", 1, 0.0, 2.0, "ok", "Der Löwe läuft, Лев идёт", "", None)]
    pdf = tmp_path / "storyboard.pdf"
    assert write_board(pdf, "Löwe", scenes, 24.0, "letter") == 1
    assert "Der Löwe läuft, ??? ????" in run_tool("pdftotext", "-layout", pdf, "-")


def test_notes_longer_than_a_page_go_on_to_the_next(tmp_path: Path) -> None:
    narrations = [" ".join(f"{side}{n:04d}" for n in range(1, 1201)) for side in "ab"]
    scenes = [
        BoardScene(f"long-{index}", index, 0.0, 1.0, "ok", text, "p", None)
        for index, text in enumerate(narrations, start=1)
    ]
    pdf = tmp_path / "storyboard.pdf"
    pages = write_board(pdf, "Long", scenes, 25.0, "letter")
    text = run_tool("pdftotext", "-layout", pdf, "-")
    assert pages >= 3 and "Notes, continued" in text
    assert sorted(re.findall(r"\b[ab]\d{4}\b", text)) == sorted(words(" ".join(narrations)))


def test_forty_scenes_fill_seven_pages(tmp_path: Path) -> None:
    image = still(tmp_path, "one.jpg", (320, 180), (200, 60, 40))
    scenes = [
        BoardScene(f"scene-{n:02d}", n, n * 2.0, n * 2.0 + 2, "ok", f"Line {n}.", "p", image)
        for n in range(1, 41)
    ]
    pdf = tmp_path / "storyboard.pdf"
    assert write_board(pdf, "Forty", scenes, 25.0, "a4") == 7
    assert page_info(pdf)[0] == 7
    text = run_tool("pdftotext", "-layout", pdf, "-")
    assert all(scene.scene_id in text for scene in scenes)
    assert "page 7/7" in text


def test_the_board_is_replaced_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    pdf = tmp_path / "storyboard.pdf"
    pdf.write_text("an old board")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    scenes = [BoardScene("broken", 1, 0.0, 1.0, "ok", "Still.", "p", broken)]
    assert write_board(pdf, "Atomic", scenes, 25.0, "a4") == 1
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.png", "storyboard.pdf"]
    assert "image unreadable" in run_tool("pdftotext", pdf, "-")


def test_timecode_counts_frames_at_the_storyboard_fps() -> None:
    assert timecode(0.0, 25.0) == "00:00:00:00"
    assert timecode(83.52, 25.0) == "00:01:23:13"
    assert timecode(3600 + 1.5, 24.0) == "01:00:01:12"


def test_board_scenes_map_a_runs_outcomes(tmp_path: Path) -> None:
    def outcome(scene_id: str, order: int, status: SceneStatus, text: str) -> SceneOutcome:
        recording = Recording(scene_id, order, tmp_path / f"{scene_id}.wav", "src", "0" * 64)
        transcript = Transcript("en", 1.0, text, text, (), 2.0, False, 0.1)
        return SceneOutcome(recording, status, transcript, prompt=f"prompt {scene_id}")

    image = tmp_path / "cache" / "a.png"
    made = GeneratedMedia(image, tmp_path / "cache" / "a.mp4", 1, "draft-model", "draft")
    outcomes = [
        replace(outcome("a", 1, SceneStatus.OK, "Hello."), media=made),
        SceneOutcome(
            Recording("b", 2, tmp_path / "b.wav", "src", "0" * 64),
            SceneStatus.FAILED,
            error="timed out",
        ),
    ]
    timeline = [TimelineEntry("a", 0.0, 2.0)]
    first, second = board_scenes(outcomes, timeline)
    assert first == BoardScene("a", 1, 0.0, 2.0, "ok", "Hello.", "prompt a", image)
    assert (second.image, second.start_s, second.status, second.note) == (
        None,
        None,
        "failed",
        "timed out",
    )


def test_a_sheet_prepared_ahead_draws_the_next_board_of_its_page_and_font(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up's blank sheet (its fonts read while the run's server starts) is the next
    board's of the same page and font, once; that board reads as one drawn from scratch."""
    scenes = seven_scenes(tmp_path)
    font = board.find_font()
    sheets.prepare_sheet("letter", font)
    made: list[PageSize] = []
    new_sheet = sheets.Sheet

    def counted(page: PageSize, font: sheets.BoardFont | None) -> sheets.Sheet:
        made.append(page)
        return new_sheet(page, font)

    monkeypatch.setattr(sheets, "Sheet", counted)
    write_board(tmp_path / "a4.pdf", "Seven", scenes, 24, "a4")
    assert made == ["a4"], "a board of another page makes its own sheet"
    write_board(tmp_path / "prepared.pdf", "Seven", scenes, 24, "letter")
    assert made == ["a4"], "the prepared sheet draws the next letter board"
    write_board(tmp_path / "fresh.pdf", "Seven", scenes, 24, "letter")
    assert made == ["a4", "letter"], "and only that one"
    prepared, fresh = tmp_path / "prepared.pdf", tmp_path / "fresh.pdf"
    assert page_info(prepared) == page_info(fresh)
    assert run_tool("pdftotext", prepared, "-") == run_tool("pdftotext", fresh, "-")
