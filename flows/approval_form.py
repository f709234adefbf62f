"""The pause that waits for reviewers: a typed form with one entry per scene (approve, reject
with a note and maybe a new prompt, or skip), shown by the Prefect UI's Resume button and
answered by the studio through the same API (`POST /flow_runs/{id}/resume`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput, read_flow_run_input
from prefect.input.run_input import keyset_from_base_key
from prefect.states import Running
from pydantic import BaseModel, Field, create_model

from domain.approval import Decision, ImageVerdict
from domain.errors import RunCancelledError
from flows.artifacts import escape_markdown
from tasks.approval import AwaitedScene


class SceneAnswer(BaseModel):
    """One scene's entry in the form."""

    decision: Literal["approve", "reject", "skip"] = Field(default="approve", title="Decision")
    note: str = Field(default="", title="Note", description="why, for a rejection")
    prompt: str = Field(
        default="",
        title="New prompt",
        description="for a rejection: the new take's prompt; empty: the same at another seed",
    )


def approval_form(scenes: Sequence[AwaitedScene], description: str) -> type[RunInput]:
    """A RunInput with a field per scene, named by its scene id."""
    fields: dict[str, Any] = {
        f"scene_{number}": (
            SceneAnswer,
            Field(
                default_factory=SceneAnswer,
                alias=scene.scene_id,
                title=f"{scene.order}. {scene.scene_id}",
                description=f"{scene.request.prompt} (seed {scene.request.seed})",
            ),
        )
        for number, scene in enumerate(scenes)
    }
    form = create_model("ImageApproval", __base__=RunInput, **fields)
    return form.with_initial_data(description=description)


def form_description(
    storyboard: str, scenes: Sequence[AwaitedScene], sheet: str, round_: int
) -> str:
    """The markdown the Prefect UI shows above the form."""
    again = f" (round {round_}: new takes of rejected images)" if round_ > 1 else ""
    rows = "\n".join(
        f"| {s.order} | {escape_markdown(s.scene_id)} | {s.request.seed} | "
        f"{escape_markdown(s.request.prompt)} |"
        for s in scenes
    )
    return (
        f"### {len(scenes)} images of {escape_markdown(storyboard)} wait for approval{again}\n\n"
        f"The images and a contact sheet of them: `{escape_markdown(sheet)}`\n\n"
        "For each scene: **approve** (its motion clip is made), **reject** (a new take: "
        "the new prompt given, or the same prompt at another seed, shown again) or "
        "**skip** (no clip; the scene ends failed).\n\n"
        f"| # | scene | seed | prompt |\n|---|---|---|---|\n{rows}\n"
    )


def ask_reviewers(
    scenes: Sequence[AwaitedScene],
    description: str,
    pause_key: str,
    timeout_s: int,
    poll_s: int,
) -> dict[str, ImageVerdict] | None:
    """Pause this flow run until the form is answered: each scene's verdict, by scene id;
    None when nobody answered within `timeout_s` (the run then goes on, running again)."""
    form = approval_form(scenes, description)
    answer: RunInput | None
    try:
        answer = pause_flow_run(
            wait_for_input=form, timeout=timeout_s, poll_interval=poll_s, key=pause_key
        )
    except FlowPauseTimeout:
        answer = _late_answer(form, pause_key)
    return None if answer is None else _verdicts(answer, scenes)


def _late_answer(form: type[RunInput], pause_key: str) -> RunInput | None:
    """An answer saved as the pause timed out, or else (a run still paused, or failed by the
    server for its expired pause) the run set running again, to assemble what was approved.
    A run cancelled meanwhile stays cancelled: RunCancelledError."""
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    run_id = context.flow_run.id
    saved = read_flow_run_input(keyset_from_base_key(f"paused-{pause_key}")["response"], run_id)
    if isinstance(saved, dict) and saved:  # read synchronously: a dict, not a coroutine
        return form(**saved)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
        if state is not None and (state.is_cancelling() or state.is_cancelled()):
            raise RunCancelledError("the flow run was cancelled while it waited for approval")
        client.set_flow_run_state(run_id, Running(message="image approval timed out"), force=True)
    get_run_logger().warning("nobody answered the image approval in time")
    return None


def _verdicts(answer: RunInput, scenes: Sequence[AwaitedScene]) -> dict[str, ImageVerdict]:
    verdicts = {}
    for number, scene in enumerate(scenes):
        given = getattr(answer, f"scene_{number}")
        verdicts[scene.scene_id] = ImageVerdict(
            Decision(given.decision), given.note.strip(), given.prompt.strip(), "reviewer"
        )
    return verdicts
