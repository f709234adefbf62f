"""Review: a contact sheet and an index.html beside the video, for the people who review it.

The page uses only relative links (the video, each scene's image and clip), so it works opened
from the local folder and served from a bucket alike. Every text it shows is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw
from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import atomic_path, write_text_atomic
from clients.media.drawing import cover, fit_text, font, line_height, placeholder_card, wrap
from domain.report import RunReport, ScenePaths
from domain.scene import SceneOutcome, SceneStatus, TimelineEntry

THUMB_WIDTH = 320
SHEET_COLUMNS = 4
_STATUS_COLOURS = {
    SceneStatus.OK: (60, 160, 90),
    SceneStatus.NO_SPEECH: (150, 150, 150),
    SceneStatus.FILTERED: (220, 150, 40),
    SceneStatus.FAILED: (210, 60, 60),
}


def _thumbnail(outcome: SceneOutcome, width: int, height: int) -> Image.Image:
    if outcome.media is not None:
        with Image.open(outcome.media.image_path) as image:
            source: Image.Image = image.convert("RGB")
        return cover(source, width, height)
    heading = outcome.status.value.replace("_", " ")
    card: Image.Image = placeholder_card(width * 2, height * 2, heading, outcome.error, "")
    return card.resize((width, height))


def contact_sheet(outcomes: Sequence[SceneOutcome], output: Path, aspect: float) -> None:
    """A grid of every scene: its frame, its id and status, and what was said."""
    thumb_w = THUMB_WIDTH
    thumb_h = round(thumb_w / aspect)
    caption_font = font(13)
    title_font = font(15, bold=True)
    text_h = line_height(title_font) + 3 * line_height(caption_font) + 12
    cell_w, cell_h = thumb_w + 16, thumb_h + text_h + 16
    rows = max(1, -(-len(outcomes) // SHEET_COLUMNS))
    columns = min(SHEET_COLUMNS, max(1, len(outcomes)))
    sheet = Image.new("RGB", (columns * cell_w + 16, rows * cell_h + 16), (245, 245, 242))
    draw = ImageDraw.Draw(sheet)
    for index, outcome in enumerate(outcomes):
        x = 16 + (index % SHEET_COLUMNS) * cell_w
        y = 16 + (index // SHEET_COLUMNS) * cell_h
        sheet.paste(_thumbnail(outcome, thumb_w, thumb_h), (x, y))
        colour = _STATUS_COLOURS[outcome.status]
        draw.rectangle((x, y + thumb_h, x + thumb_w, y + thumb_h + 4), fill=colour)
        title = f"{outcome.recording.order}. {outcome.scene_id} · {outcome.status.value}"
        title_font_fit, title_lines = fit_text(title, thumb_w, 1, (15, 13, 11), bold=True)
        draw.text((x, y + thumb_h + 8), title_lines[0] if title_lines else "", font=title_font_fit,
                  fill=(20, 20, 20))  # fmt: skip
        said = outcome.transcript.text if outcome.transcript else outcome.error
        lines = wrap(said or "", caption_font, thumb_w, 3)
        for number, line in enumerate(lines):
            draw.text(
                (
                    x,
                    y + thumb_h + 10 + line_height(title_font) + number * line_height(caption_font),
                ),
                line,
                font=caption_font,
                fill=(70, 70, 70),
            )
    with atomic_path(output) as temporary:
        sheet.save(temporary, format="PNG")


STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;
  background:#f6f6f3;color:#1d1d1f}
h1{margin:.2em 0}
.meta{color:#555}
.draft{color:#b00;font-weight:bold}
video.main{width:100%;background:#000;border-radius:6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px;margin-top:18px}
.card{background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 3px #0002;
  border-top:5px solid #3a5}
.card.no_speech{border-top-color:#999}
.card.filtered{border-top-color:#e93}
.card.failed{border-top-color:#d33}
.card header{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.card h2{font-size:1.05em;margin:0;word-break:break-all}
.order{font-weight:bold;color:#777}
.status{font-size:.8em;background:#eee;border-radius:4px;padding:1px 6px}
.seek{margin-left:auto;font-size:.85em}
.media img,.media video{width:100%;display:block;margin-top:6px;border-radius:4px}
.placeholder{height:120px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777;margin-top:6px}
dl{margin:8px 0 0}
dt{font-size:.8em;color:#777;margin-top:6px}
dd{margin:0;white-space:pre-wrap}
.error{color:#b22;font-size:.9em}
.note{color:#a60;font-size:.9em}
"""


def _seconds(value: float) -> str:
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)}:{seconds:05.2f}"


def review_page(
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    published: Mapping[str, ScenePaths],
    report: RunReport,
) -> str:
    """index.html: the video, then one card per scene."""
    e = html.escape
    spans = {entry.scene_id: entry for entry in timeline}
    cards = []
    for outcome in outcomes:
        paths = published.get(outcome.scene_id, ScenePaths())
        span = spans.get(outcome.scene_id)
        when = f"{_seconds(span.start_s)} to {_seconds(span.end_s)}" if span else ""
        media = (
            f'<img src="{e(paths.image)}" alt="scene {e(outcome.scene_id)} image" loading="lazy">'
            f'<video src="{e(paths.clip)}" poster="{e(paths.image)}" controls muted loop '
            'preload="none"></video>'
            if paths.image
            else '<div class="placeholder">no picture</div>'
        )
        transcript = outcome.transcript.text if outcome.transcript else ""
        language = outcome.transcript.language if outcome.transcript else ""
        error = f'<p class="error">{e(outcome.error)}</p>' if outcome.error else ""
        note = f'<p class="note">{e(outcome.note)}</p>' if outcome.note else ""
        start = f"{span.start_s:.3f}" if span else "0"
        cards.append(
            f'<article class="card {e(outcome.status.value)}" id="scene-{outcome.recording.order}">'
            f'<header><span class="order">{outcome.recording.order}</span>'
            f'<h2>{e(outcome.scene_id)}</h2><span class="status">{e(outcome.status.value)}</span>'
            f'<a class="seek" href="#top" data-start="{start}">{e(when)}</a></header>'
            f'<div class="media">{media}</div>'
            f"<dl><dt>Transcript{f' ({e(language)})' if language else ''}</dt>"
            f"<dd>{e(transcript) or '<em>none</em>'}</dd>"
            f"<dt>Prompt</dt><dd>{e(outcome.prompt) or '<em>none</em>'}</dd>"
            f"<dt>Seed</dt><dd>{'' if outcome.seed is None else outcome.seed}</dd></dl>"
            f"{error}{note}</article>"
        )
    counts = ", ".join(f"{n} {e(status)}" for status, n in report.scenes.items() if n)
    draft = (
        '<p class="draft">DRAFT: the pictures are drawn offline, not generated.</p>'
        if report.draft
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(report.title)}: storyboard review</title>
<style>
{STYLE}</style></head>
<body id="top">
<h1>{e(report.title)}</h1>
<p class="meta">{counts} · backend {e(report.backend)} · Whisper {e(report.model)} ·
{report.api_calls} API calls, {report.cache_hits} cache hits ·
<a href="manifest.csv">manifest.csv</a> · <a href="storyboard.srt">captions</a> ·
<a href="contact_sheet.png">contact sheet</a></p>
{draft}
<video class="main" id="storyboard" src="storyboard.mp4" controls preload="metadata"></video>
<section class="cards">
{"".join(cards)}
</section>
<script>
document.querySelectorAll("a.seek").forEach(function (link) {{
  link.addEventListener("click", function () {{
    var video = document.getElementById("storyboard");
    video.currentTime = parseFloat(link.dataset.start) || 0;
  }});
}});
</script>
</body></html>
"""


def write_review(
    outcomes: Sequence[SceneOutcome],
    timeline: Sequence[TimelineEntry],
    published: Mapping[str, ScenePaths],
    report: RunReport,
    target: Path,
    aspect: float,
) -> None:
    contact_sheet(outcomes, target / "contact_sheet.png", aspect)
    write_text_atomic(target / "index.html", review_page(outcomes, timeline, published, report))


@task(name="review", cache_policy=NO_CACHE)
def review(
    outcomes: list[SceneOutcome],
    timeline: list[TimelineEntry],
    published: dict[str, ScenePaths],
    report: RunReport,
    target: Path,
    aspect: float,
) -> None:
    write_review(outcomes, timeline, published, report, target, aspect)
