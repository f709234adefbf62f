"""Approve the pictures before paying for motion (`generation.approve_images`).

Once every image is made, the ones no reviewer has approved yet are shown (TARGET/approval/,
an artifact) and the run pauses for a typed answer (`flows/approval_form.py`). Approved
scenes get their motion clips; a rejected one gets a new take, shown again in the next
round, until it is approved or skipped; nobody answering in `approval_timeout_s` leaves the
scenes still waiting failed, "not approved in time". Verdicts are kept by image
(`tasks/approval.py`), so a later run neither asks again nor pays for an image twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

from clients.services import backend_for
from domain.approval import (
    NOT_APPROVED_IN_TIME,
    SKIPPED_AT_APPROVAL,
    Decision,
    ImageVerdict,
    SceneImage,
)
from domain.layout import ApprovalRequest
from domain.media import ImageRequest
from domain.scene import GeneratedMedia, SceneFailure, Transcript
from flows.approval_form import ask_reviewers, form_description
from flows.artifacts import artifact_key
from flows.runners import has_prefect_ui
from flows.scene_work import ScenePhase, SceneResults, generated
from flows.stages import raise_if_refused
from tasks.approval import (
    ApprovalBook,
    AwaitedScene,
    retake,
    show_for_approval,
    withdraw_approval,
)
from tasks.generate import generate, generate_image

APPROVED_BY_FLAG = "--approve-all"


@dataclass
class _Approval:
    phase: ScenePhase
    results: SceneResults
    book: ApprovalBook
    notes: dict[int, str] = field(default_factory=dict)
    shown: bool = False
    clips: dict[int, PrefectFuture[GeneratedMedia | SceneFailure]] = field(default_factory=dict)
    rejected: dict[int, tuple[ImageRequest, Path, ImageVerdict]] = field(default_factory=dict)
    """Rejections kept once their new take is made: (the request, its image, the verdict)."""

    def __post_init__(self) -> None:
        self.plan, self.setup, self.settings = (
            self.phase.plan,
            self.phase.setup,
            self.phase.settings,
        )
        self.approve_all = self.phase.approve_all

    def awaited(self, index: int, image: SceneImage) -> AwaitedScene:
        recording, transcript = self.plan.recordings[index], self.results[index].heard
        said = transcript.text if isinstance(transcript, Transcript) else ""
        request = self.results.request(index)
        return AwaitedScene(
            scene_id=recording.scene_id,
            order=recording.order,
            transcript=said,
            request=request,
            image=image,
            rejected_before=self.notes.get(index, ""),
        )

    def ask(self, waiting: dict[int, SceneImage], round_: int) -> dict[str, ImageVerdict] | None:
        scenes = [self.awaited(index, image) for index, image in sorted(waiting.items())]
        if self.approve_all:
            return {s.scene_id: ImageVerdict(Decision.APPROVE, by=APPROVED_BY_FLAG) for s in scenes}
        generation, context = self.settings.generation, FlowRunContext.get()
        run_id = str(context.flow_run.id) if context and context.flow_run else ""
        asked = ApprovalRequest(
            storyboard=self.plan.name,
            flow_run_id=run_id,
            api_url=str(PREFECT_API_URL.value() or ""),
            pause_key=f"approve-images-{round_}",
            round=round_,
            timeout_s=generation.approval_timeout_s,
        )
        aspect = self.settings.assembly.width / self.settings.assembly.height
        sheet = show_for_approval(self.setup.target, scenes, asked, self.setup.cache, aspect)
        self.shown = True
        description = form_description(self.plan.title, scenes, sheet, round_)
        create_markdown_artifact(
            markdown=description,
            key=artifact_key("approval", self.plan.name),
            description=f"Images of {self.plan.title} awaiting approval",
        )
        _announce(len(scenes), sheet, run_id, generation.approval_timeout_s)
        return ask_reviewers(
            scenes, description, asked.pause_key, asked.timeout_s, generation.approval_poll_s
        )

    def settle(
        self, waiting: dict[int, SceneImage], verdicts: dict[str, ImageVerdict] | None
    ) -> tuple[set[int], dict[int, PrefectFuture[SceneImage | SceneFailure]]]:
        """Apply each verdict: (the scenes approved, the new takes of those rejected)."""
        approved: set[int] = set()
        retakes: dict[int, PrefectFuture[SceneImage | SceneFailure]] = {}
        for index, image in waiting.items():
            recording = self.plan.recordings[index]
            verdict = verdicts.get(recording.scene_id) if verdicts is not None else None
            if verdict is None:
                self.fail(index, NOT_APPROVED_IN_TIME)
                continue
            request = self.results.request(index)
            if verdict.decision is Decision.APPROVE:
                self.book.record(request, image.image_path, verdict)
                approved.add(index)
            elif verdict.decision is Decision.SKIP:
                self.fail(index, SKIPPED_AT_APPROVAL)
            else:  # kept once its new take is made: a take that fails is no way forward
                self.rejected[index] = (request, image.image_path, verdict)
                retakes[index] = self.submit_retake(index, verdict)
        return approved, retakes

    def new_takes(
        self, retakes: dict[int, PrefectFuture[SceneImage | SceneFailure]]
    ) -> dict[int, SceneImage]:
        """The new takes made (their rejections now kept); a take that failed fails its
        scene, with every earlier take's requests counted."""
        made_now: dict[int, SceneImage] = {}
        for index, future in retakes.items():
            made = generated(future)
            if isinstance(made, SceneFailure):
                self.results[index].settle(made)
                continue
            request, image, verdict = self.rejected.pop(index)
            self.book.record(request, image, verdict)
            self.taken(index, made)
            taken = self.results.request(index)
            made_now[index] = replace(made, approved=self.book.approved(taken, made.image_path))
        return made_now

    def rounds(self, images: dict[int, SceneImage]) -> None:
        """Ask, settle and take again until no image waits; the approved ones animated."""
        self.animate(sorted(index for index, image in images.items() if image.approved))
        waiting = {index: image for index, image in images.items() if not image.approved}
        round_ = 0
        while waiting:
            round_ += 1
            passed, retakes = self.settle(waiting, self.ask(waiting, round_))
            self.animate(sorted(passed))
            made_now = self.new_takes(retakes)
            images.update(made_now)
            self.animate(sorted(index for index, image in made_now.items() if image.approved))
            waiting = {index: image for index, image in made_now.items() if not image.approved}
            raise_if_refused(self.results.generated)

    def submit_retake(
        self, index: int, verdict: ImageVerdict
    ) -> PrefectFuture[SceneImage | SceneFailure]:
        recording, record = self.plan.recordings[index], self.results[index]
        request = retake(self.results.request(index), verdict, self.plan.spec.style)
        record.prompt = replace(record.prompt, request=request) if record.prompt else None
        self.notes[index] = verdict.note or "rejected"
        get_run_logger().info(
            "%s: rejected (%s); a new take with seed %d",
            recording.scene_id,
            verdict.note or "no note",
            request.seed,
        )
        return self.phase.submit(
            generate_image,
            f"generate image {recording.scene_id} (new take)",
            recording.scene_id,
            request,
            refresh=False,
        )

    def fail(self, index: int, reason: str) -> None:
        self.results[index].settle(SceneFailure(reason))

    def taken(self, index: int, image: SceneImage) -> None:
        self.results[index].image_calls += image.api_calls

    def animate(self, approved: Sequence[int]) -> None:
        """Start the motion clip of each approved image (the image itself from the cache),
        while the rejected scenes go round again."""
        for index in approved:
            recording, request = self.plan.recordings[index], self.results.request(index)
            self.clips[index] = self.phase.submit(
                generate,
                f"generate clip {recording.scene_id}",
                recording.scene_id,
                request,
                image_approved=True,
            )

    def gather_clips(self, images: dict[int, SceneImage]) -> None:
        for index, future in self.clips.items():
            self.results[index].settle(generated(future), clip_of=images[index])


def approve_then_animate(phase: ScenePhase, results: SceneResults) -> None:
    """Every image in `results.images` approved (or rejected and taken again, skipped, or
    timed out), then the clips of the approved ones, into `results.generated`."""
    raise_if_refused(results.generated)
    setup, generation = phase.setup, phase.settings.generation
    backend = backend_for(setup.backend, generation, setup.shared_limit)
    approval = _Approval(phase, results, ApprovalBook(setup.cache.open(), backend))
    images = dict(results.images)
    for index, image in images.items():
        approval.taken(index, image)
    try:
        approval.rounds(images)
    finally:  # answered, timed out, or failing: nothing waits for reviewers any more
        if approval.shown:
            withdraw_approval(setup.target)
    approval.gather_clips(images)


def _announce(count: int, sheet: str, run_id: str, timeout_s: int) -> None:
    ui = str(PREFECT_UI_URL.value() or "").rstrip("/") if has_prefect_ui() else ""
    where = f"the Prefect UI ({ui}/runs/flow-run/{run_id}) or " if ui else ""
    get_run_logger().warning(
        "%d %s for approval (contact sheet: %s): answer in %sthe studio; waiting up to %s",
        count,
        "image waits" if count == 1 else "images wait",
        sheet,
        where,
        _duration(timeout_s),
    )


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds} s"
