"""Review: a contact sheet and an index.html beside the video, for the people who review it.

The page uses only relative links (the video, each scene's image and clip), so it works opened
from the local folder and served from a bucket alike. The page is the Jinja2 template
`templates/review.html.j2`, rendered with autoescaping: every text it shows is escaped by the
engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from PIL import Image, ImageDraw
from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import atomic_path, content_key, write_text_atomic
from clients.media.drawing import cover, fit_text, font, line_height, placeholder_card, wrap
from configs.settings import AssemblySettings
from domain.layout import ASSEMBLY, CONTACT_SHEET_FILE, REVIEW_PAGE, ReviewEntry
from domain.report import RunReport, ScenePaths
from domain.scene import SceneOutcome, SceneStatus, TimelineEntry
from tasks.assembly.store import AssemblyStore, file_digest
from tasks.reviews import Verdict, verdict_for

EXPORT_LABELS = {
    ".pdf": "printable board (PDF)",
    ".otio": "OpenTimelineIO",
    ".xml": "Final Cut Pro XML",
    ".edl": "EDL",
}
"""How the page names each file handed to editors and to the review meeting."""
SHEET_FORMAT = 1
"""Bumped whenever the contact sheet is drawn differently."""
THUMB_WIDTH = 320
SHEET_COLUMNS = 4
_STATUS_COLOURS = {
    SceneStatus.OK: (60, 160, 90),
    SceneStatus.NO_SPEECH: (150, 150, 150),
    SceneStatus.FILTERED: (220, 150, 40),
    SceneStatus.BLOCKED: (140, 70, 170),
    SceneStatus.FAILED: (210, 60, 60),
}


@dataclass(frozen=True)
class SheetCell:
    """One cell of a contact sheet: a frame (or a card saying why there is none), a title
    and up to three lines of text under it."""

    image: Path | None
    title: str
    text: str
    colour: tuple[int, int, int] = (60, 160, 90)
    card: tuple[str, str] = ("", "")
    """The card's heading and reason, when there is no image."""


def _thumbnail(cell: SheetCell, width: int, height: int, still_of: Callable[[Path], Path]) -> Any:
    if cell.image is not None:
        with Image.open(still_of(cell.image)) as image:
            image.draft("RGB", (width, height))  # a JPEG decoded at the least scale that covers
            source: Image.Image = image.convert("RGB")
        return cover(source, width, height)
    card: Image.Image = placeholder_card(width * 2, height * 2, *cell.card, "")
    return card.resize((width, height))


def _cell(outcome: SceneOutcome) -> SheetCell:
    said = outcome.transcript.text if outcome.transcript else outcome.error
    return SheetCell(
        outcome.media.image_path if outcome.media is not None else None,
        f"{outcome.recording.order}. {outcome.scene_id} · {outcome.status.value}",
        said or "",
        _STATUS_COLOURS[outcome.status],
        (outcome.status.value.replace("_", " "), outcome.error),
    )


def contact_sheet(
    outcomes: Sequence[SceneOutcome],
    output: Path,
    aspect: float,
    still_of: Callable[[Path], Path] = lambda image: image,
) -> None:
    """A grid of every scene: its frame (drawn from `still_of` the scene's image), its id and
    status, and what was said."""
    draw_sheet([_cell(outcome) for outcome in outcomes], output, aspect, still_of)


def draw_sheet(
    cells: Sequence[SheetCell],
    output: Path,
    aspect: float,
    still_of: Callable[[Path], Path] = lambda image: image,
) -> None:
    """A PNG grid of `cells`, four to a row."""
    thumb_w = THUMB_WIDTH
    thumb_h = round(thumb_w / aspect)
    caption_font = font(13)
    title_font = font(15, bold=True)
    text_h = line_height(title_font) + 3 * line_height(caption_font) + 12
    cell_w, cell_h = thumb_w + 16, thumb_h + text_h + 16
    rows = max(1, -(-len(cells) // SHEET_COLUMNS))
    columns = min(SHEET_COLUMNS, max(1, len(cells)))
    sheet = Image.new("RGB", (columns * cell_w + 16, rows * cell_h + 16), (245, 245, 242))
    draw = ImageDraw.Draw(sheet)
    for index, cell in enumerate(cells):
        x = 16 + (index % SHEET_COLUMNS) * cell_w
        y = 16 + (index // SHEET_COLUMNS) * cell_h
        sheet.paste(_thumbnail(cell, thumb_w, thumb_h, still_of), (x, y))
        draw.rectangle((x, y + thumb_h, x + thumb_w, y + thumb_h + 4), fill=cell.colour)
        title_font_fit, title_lines = fit_text(cell.title, thumb_w, 1, (15, 13, 11), bold=True)
        draw.text(
            (x, y + thumb_h + 8),
            title_lines[0] if title_lines else "",
            font=title_font_fit,
            fill=(20, 20, 20),
        )
        text_top = y + thumb_h + 10 + line_height(title_font)
        for number, line in enumerate(wrap(cell.text, caption_font, thumb_w, 3)):
            draw.text(
                (x, text_top + number * line_height(caption_font)),
                line,
                font=caption_font,
                fill=(70, 70, 70),
            )
    with atomic_path(output) as temporary:
        sheet.save(temporary, format="PNG")


def contact_sheet_key(outcomes: Sequence[SceneOutcome], aspect: float) -> str:
    """Everything the contact sheet shows, so an unchanged storyboard reuses the last one."""
    shown = [
        [
            outcome.recording.order,
            outcome.scene_id,
            outcome.status.value,
            outcome.transcript.text if outcome.transcript else "",
            outcome.error,
            file_digest(outcome.media.image_path) if outcome.media else "",
        ]
        for outcome in outcomes
    ]
    return content_key("contact sheet", SHEET_FORMAT, shown, aspect)


TEMPLATES = Path(__file__).parent / "templates"
_PAGES = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def _seconds(value: float) -> str:
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)}:{seconds:05.2f}"


@dataclass(frozen=True)
class _Card:
    """One scene's card on the page: the outcome, with what the page works out for it."""

    outcome: SceneOutcome
    paths: ScenePaths
    start: str
    """Where the video seeks to, in seconds."""
    when: str
    """The scene's span, "m:ss.ss to m:ss.ss", or "" when it is not on the timeline."""
    transcript: str
    language: str
    review: Verdict | None = None


def _card(
    outcome: SceneOutcome,
    span: TimelineEntry | None,
    paths: ScenePaths,
    reviews: Mapping[str, ReviewEntry],
) -> _Card:
    transcript = outcome.transcript
    return _Card(
        outcome=outcome,
        paths=paths,
        start=f"{span.start_s:.3f}" if span else "0",
        when=f"{_seconds(span.start_s)} to {_seconds(span.end_s)}" if span else "",
        transcript=transcript.text if transcript else "",
        language=transcript.language if transcript else "",
        review=verdict_for(outcome, reviews),
    )


def review_page(
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    published: Mapping[str, ScenePaths],
    report: RunReport,
    exports: Sequence[str] = (),
    reviews: Mapping[str, ReviewEntry] | None = None,
) -> str:
    """index.html: the video, then one card per scene (templates/review.html.j2), linking
    the `exports` written beside it (file names)."""
    spans = {entry.scene_id: entry for entry in timeline}
    cards = [
        _card(
            outcome,
            spans.get(outcome.scene_id),
            published.get(outcome.scene_id, ScenePaths()),
            reviews or {},
        )
        for outcome in outcomes
    ]
    links = [(name, EXPORT_LABELS.get(Path(name).suffix, name)) for name in exports]
    return _PAGES.get_template("review.html.j2").render(report=report, cards=cards, exports=links)


def write_review(
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    published: Mapping[str, ScenePaths],
    report: RunReport,
    target: Path,
    aspect: float,
    exports: Sequence[str] = (),
    store: AssemblyStore | None = None,
    reviews: Mapping[str, ReviewEntry] | None = None,
) -> None:
    sheet = target / CONTACT_SHEET_FILE
    if store is None:
        contact_sheet(outcomes, sheet, aspect)
    else:
        key = contact_sheet_key(outcomes, aspect)

        def still_of(image: Path) -> Path:
            return store.still(image, 2 * THUMB_WIDTH)

        store.reuse_or_make(
            "sheets", key, sheet, lambda made: contact_sheet(outcomes, made, aspect, still_of)
        )
    page = review_page(
        outcomes=outcomes,
        timeline=timeline,
        published=published,
        report=report,
        exports=exports,
        reviews=reviews,
    )
    write_text_atomic(target / REVIEW_PAGE, page)


@task(name="review", cache_policy=NO_CACHE)
def review(
    outcomes: list[SceneOutcome],
    timeline: list[TimelineEntry],
    published: dict[str, ScenePaths],
    report: RunReport,
    target: Path,
    settings: AssemblySettings,
    exports: list[str] | None = None,
    cache_dir: Path | None = None,
    reviews: Mapping[str, ReviewEntry] | None = None,
) -> None:
    """The contact sheet and the review page in the storyboard's frame shape."""
    aspect = settings.width / settings.height
    store = AssemblyStore(cache_dir / ASSEMBLY) if cache_dir is not None else None
    write_review(
        outcomes=outcomes,
        timeline=timeline,
        published=published,
        report=report,
        target=target,
        aspect=aspect,
        exports=exports or (),
        store=store,
        reviews=reviews,
    )
