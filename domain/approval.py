"""Approving the pictures before motion: a reviewer's verdict on one scene's image, and the
image awaiting it (README "Approve the pictures first")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

NOT_APPROVED_IN_TIME = "not approved in time"
SKIPPED_AT_APPROVAL = "skipped at image approval"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    """A new take: the edited prompt when one is given, else another seed."""
    SKIP = "skip"
    """No clip and no new take: the scene ends failed, saying it was skipped."""


@dataclass(frozen=True)
class ImageVerdict:
    decision: Decision
    note: str = ""
    prompt: str = ""
    """For a rejection: the scene's new prompt (its subject; the storyboard's style is added)."""
    by: str = ""
    """Who answered: "reviewer" (the Prefect UI or the studio), or "--approve-all"."""


@dataclass(frozen=True)
class SceneImage:
    """One scene's image, made (or found in the cache) before its motion clip."""

    image_path: Path
    seed: int
    image_model: str
    backend: str
    api_calls: int = 0
    cache_hits: int = 0
    retired_model: str = ""
    approved: bool = False
    """A reviewer approved these very bytes already (in an earlier run or round)."""
