"""Approving the pictures before motion: the verdicts kept, the takes they lead to, and the
images shown to the reviewers (README "Approve the pictures first").

A verdict is kept in the content cache under the key of the image it judged, so it holds for
those very bytes in every later run: an approved image is not shown again, and a rejected
request leads, run after run, to the take that replaced it (`ApprovalBook.latest_take`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from clients.cache import ContentCache, content_key
from clients.generation.backend import GenerationBackend
from clients.layout import write_pending
from clients.storage import CacheLocation, is_s3, open_storage
from domain.approval import Decision, ImageVerdict, SceneImage
from domain.layout import (
    APPROVAL_FOLDER,
    APPROVALS,
    CONTACT_SHEET_FILE,
    PENDING_FILE,
    ApprovalRequest,
    PendingApproval,
    PendingScene,
)
from domain.media import ImageRequest
from tasks.generate import image_key
from tasks.prompt import compose_prompt
from tasks.review import SheetCell, draw_sheet

IMAGE_NAME = re.compile(r"\d{4,}-[0-9a-f]{8}\.(?:png|jpe?g|webp)")
"""A scene's image in TARGET/approval/: its order, a digest of its id, the image's kind."""
MAX_TAKES = 100
"""Rejected takes followed at most, a guard against a cycle of edited prompts."""


def retake(request: ImageRequest, verdict: ImageVerdict, style: str) -> ImageRequest:
    """The next take of a rejected image: the edited prompt (with the storyboard's style) at
    the same seed, or when no new prompt is given the same prompt at another seed."""
    if verdict.prompt.strip():
        prompt = compose_prompt("", style, verdict.prompt).text
        if prompt and prompt != request.prompt:
            return replace(request, prompt=prompt)
    seed = int(content_key("retake", request.seed, request.prompt)[:8], 16) % (2**32 - 1) + 1
    return replace(request, seed=seed)


class ApprovalBook:
    """The reviewers' verdicts, by the cache key of the image each judged."""

    def __init__(self, cache: ContentCache, backend: GenerationBackend) -> None:
        self.cache, self.backend = cache, backend

    def _approval_key(self, request: ImageRequest, image: Path) -> str:
        digest = hashlib.sha256(self.cache.ensure_local(image).read_bytes()).hexdigest()
        return content_key("approved", image_key(self.backend, request), digest)

    def _rejection_key(self, request: ImageRequest) -> str:
        return content_key("rejected", image_key(self.backend, request))

    def approved(self, request: ImageRequest, image: Path) -> bool:
        """Whether reviewers approved these very bytes as `request`'s image."""
        return self.cache.get_json(APPROVALS, self._approval_key(request, image)) is not None

    def rejection(self, request: ImageRequest) -> ImageVerdict | None:
        entry = self.cache.get_json(APPROVALS, self._rejection_key(request))
        if entry is None:
            return None
        return ImageVerdict(Decision.REJECT, entry["note"], entry["prompt"], entry["by"])

    def record(self, request: ImageRequest, image: Path, verdict: ImageVerdict) -> None:
        """Keep an approval (of this image) or a rejection (of this request, whose next take
        later runs go on to); a skip holds for this run only."""
        if verdict.decision is Decision.SKIP:
            return
        approving = verdict.decision is Decision.APPROVE
        key = self._approval_key(request, image) if approving else self._rejection_key(request)
        entry = {"note": verdict.note, "prompt": verdict.prompt, "by": verdict.by}
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.cache.put_json(APPROVALS, key, {**entry, "seed": request.seed, "at": at})

    def latest_take(self, request: ImageRequest, style: str) -> ImageRequest:
        """`request`, or the take that replaced it when reviewers rejected it (and so on)."""
        for _ in range(MAX_TAKES):
            verdict = self.rejection(request)
            if verdict is None:
                return request
            request = retake(request, verdict, style)
        return request


@dataclass(frozen=True)
class AwaitedScene:
    """One scene whose image waits for a verdict, as the reviewers are shown it."""

    scene_id: str
    order: int
    transcript: str
    request: ImageRequest
    image: SceneImage
    rejected_before: str = ""
    """The note of the take this one replaces, if any."""


@task(name="show images for approval", cache_policy=NO_CACHE)
def show_for_approval(
    target: str,
    scenes: Sequence[AwaitedScene],
    asked: ApprovalRequest,
    cache: CacheLocation,
    aspect: float,
) -> str:
    """Put the images, a contact sheet of them and `pending.json` in TARGET/approval/ (a
    folder or S3): where reviewers and the studio find what the paused run waits for.
    Returns where the contact sheet is."""
    local = cache.open()
    folder = open_storage(target).child(APPROVAL_FOLDER)
    listed = []
    for scene in scenes:
        image = local.ensure_local(scene.image.image_path)
        name = f"{scene.order:04d}-{content_key(scene.scene_id)[:8]}{image.suffix}"
        folder.write_bytes(name, image.read_bytes())
        listed.append(_listed(scene, name))
    sheet = local.root / "approval-sheets" / f"{content_key(target, asked.round)[:16]}.png"
    cells = [
        SheetCell(
            local.ensure_local(s.image.image_path),
            f"{s.order}. {s.scene_id} · seed {s.request.seed}",
            s.request.prompt,
        )
        for s in scenes
    ]
    draw_sheet(cells, sheet, aspect)
    folder.write_bytes(CONTACT_SHEET_FILE, sheet.read_bytes())
    started = time.time()
    pending = PendingApproval(
        **asdict(asked),
        asked_at=_stamp(started),
        deadline=_stamp(started + asked.timeout_s),
        sheet=CONTACT_SHEET_FILE,
        scenes=tuple(listed),
    )
    write_pending(folder, pending)
    return folder.uri_of(CONTACT_SHEET_FILE)


@task(name="withdraw approval request", cache_policy=NO_CACHE)
def withdraw_approval(target: str) -> None:
    """The pause is over: TARGET/approval/ loses what `show_for_approval` put there (its own
    names only, and nothing below them)."""
    folder = open_storage(target).child(APPROVAL_FOLDER)
    for item in folder.list(recursive=False):
        if is_approval_file(item.name):
            folder.delete(item.name)
    if not is_s3(target):
        with contextlib.suppress(OSError):  # not empty: someone else's files stay
            (Path(target) / APPROVAL_FOLDER).rmdir()


def is_approval_file(name: str) -> bool:
    """A name `show_for_approval` writes: `pending.json`, the sheet, or a scene's image."""
    return name in (PENDING_FILE, CONTACT_SHEET_FILE) or bool(IMAGE_NAME.fullmatch(name))


def _listed(scene: AwaitedScene, image_name: str) -> PendingScene:
    return PendingScene(
        scene_id=scene.scene_id,
        order=scene.order,
        image=image_name,
        seed=scene.request.seed,
        prompt=scene.request.prompt,
        transcript=scene.transcript,
        rejected_before=scene.rejected_before,
    )


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
