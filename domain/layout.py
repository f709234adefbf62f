"""The file contract: every name the product reads or writes in SOURCE and TARGET, decided
here and nowhere else, with the shape of the files more than one part reads. No I/O: one
reader and one writer each live in `clients/layout.py`.

SOURCE (a folder or an S3 prefix, one storyboard per folder):
    <scene id>.<ogg|mp3|wav|...>        a scene's recording
    storyboard.yaml                     the storyboard's own settings and scenes (optional)
    .storyboard/history/<scene>/...     earlier takes the studio replaced (kept, never read)

TARGET (the same relative folder under the output location):
    storyboard.mp4, .srt, .vtt          the video and its captions
    storyboard.otio, .xml, .edl, .pdf   editor timelines and the printable board
    contact_sheet.png, index.html       the review sheet and page
    manifest.csv, run.json              one row per scene; what the run did and wrote
    scenes/<scene id>/image.*, clip.mp4 each scene's picture and motion clip
    review.json                         reviewers' verdicts, written by the studio
    approval/pending.json, ...          what a paused run waits for (image approval)
    .storyboard/run.lease, claims/...   one run per target; one watcher per change

STORYBOARD_CACHE_DIR (this machine's cache; the same names under a shared s3:// cache):
    images/, clips/                     paid pictures and motion clips, by request
    transcripts/, languages/            what Whisper read, by recording and settings
    approvals/, screened/               reviewers' verdicts by image; the classifier's scores
    assembly/, staging/, sources/       what can always be made again (pruned to cache.max_gb)
    models/                             Whisper weights unpacked from the bundled packages
    .holds/                             the renders running now (nothing they use is pruned)
"""

from __future__ import annotations

from dataclasses import dataclass

STORYBOARD_FILE = "storyboard.yaml"
PICTURE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp"}
"""The picture formats a character's reference may be (a camera's multi-picture JPEG is MPO),
and the suffix the studio writes each with."""
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
NAMED_FILE_SUFFIXES = (*PICTURE_SUFFIXES, ".safetensors", ".bin")
"""Files a storyboard names beside it (characters' reference pictures, LoRA weights): inputs
of its render like the recordings, so a changed one is seen by the watcher and the listener."""
HISTORY_FOLDER = ".storyboard/history"

VIDEO_FILE = "storyboard.mp4"
SRT_FILE = "storyboard.srt"
VTT_FILE = "storyboard.vtt"
OTIO_FILE = "storyboard.otio"
EXPORT_FILES = {"fcp_xml": "storyboard.xml", "edl": "storyboard.edl"}
"""`assembly.exports` names: the file each one writes."""
BOARD_FILE = "storyboard.pdf"
CONTACT_SHEET_FILE = "contact_sheet.png"
REVIEW_PAGE = "index.html"
MANIFEST_FILE = "manifest.csv"
RUN_FILE = "run.json"
SCENES_FOLDER = "scenes"
REVIEW_FILE = "review.json"
APPROVAL_FOLDER = "approval"
PENDING_FILE = "pending.json"
TARGET_LEASE = ".storyboard/run.lease"
CLAIMS_FOLDER = ".storyboard/claims"
WRITE_CHECK = ".storyboard/write-check"

FINAL_FILES = (MANIFEST_FILE, REVIEW_PAGE, RUN_FILE)
"""Published last, in this order: the files that name the others."""
WRITTEN_EVERY_RUN = (VIDEO_FILE, SRT_FILE, VTT_FILE, CONTACT_SHEET_FILE, *FINAL_FILES)
"""The top-level files every run writes; the exports and the board come as asked."""
OUTPUT_FILES = frozenset({*WRITTEN_EVERY_RUN, OTIO_FILE, *EXPORT_FILES.values(), BOARD_FILE})
"""Every top-level file a run may write."""

REVIEW_VERDICTS = ("approved", "needs_changes")
"""What a reviewer may say of a scene in `review.json`."""


@dataclass(frozen=True)
class ReviewEntry:
    """One scene's verdict in `review.json`, on the take it was given to (`audio_sha256` and
    `seed`, from manifest.csv at that moment; None when not known)."""

    verdict: str
    comment: str = ""
    at: str = ""
    """When it was given, UTC, as 2026-01-31T12:00:00Z."""
    audio_sha256: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class PendingScene:
    """One image a paused run waits on, as `approval/pending.json` lists it."""

    scene_id: str
    order: int
    image: str
    seed: int
    prompt: str
    transcript: str
    rejected_before: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    """Where a paused run listens for its answer: the part of `approval/pending.json` the run
    knows before it shows its images."""

    storyboard: str
    flow_run_id: str
    api_url: str
    pause_key: str
    round: int
    timeout_s: int


@dataclass(frozen=True)
class PendingApproval(ApprovalRequest):
    """`approval/pending.json`: what a paused run waits for, and where it listens."""

    asked_at: str
    deadline: str
    sheet: str
    scenes: tuple[PendingScene, ...]

    @property
    def files(self) -> set[str]:
        """The only names the studio serves from TARGET/approval/."""
        return {self.sheet, *(scene.image for scene in self.scenes)} - {""}


IMAGES = "images"
CLIPS = "clips"
TRANSCRIPTS = "transcripts"
LANGUAGES = "languages"
APPROVALS = "approvals"
SAFETY_SCORES = "screened"
ASSEMBLY = "assembly"
STAGING = "staging"
SOURCES = "sources"
MODELS = "models"
CACHE_HOLDS = ".holds"
GENERATED_NAMESPACES = (IMAGES, CLIPS, TRANSCRIPTS, LANGUAGES, APPROVALS, SAFETY_SCORES)
"""What was paid for, read or scored: pruned only when asked (`--include-generated`)."""
REBUILDABLE_NAMESPACES = (ASSEMBLY, STAGING, SOURCES)
"""What the cache can always make again from the storyboard and its paid results."""
