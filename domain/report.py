"""What a run reports: `run.json`'s record and each scene's published files."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScenePaths:
    """A scene's published files, relative to TARGET ("" when it has none)."""

    image: str = ""
    clip: str = ""


@dataclass
class RunReport:
    """What `run.json` records."""

    storyboard: str
    title: str
    source: str
    target: str
    backend: str
    engine: str
    model: str
    task_runner: str
    stages: dict[str, float] = field(default_factory=dict)
    scenes: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    cache_hits: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    draft: bool = False
    source_fingerprint: str | None = None
    fallbacks: dict[str, str] = field(default_factory=dict)
    """Image models found retired, and the fallback that made their scenes' images."""
    unknown_outcomes: list[str] = field(default_factory=list)
    """Scenes whose request was sent but whose answer was lost (a re-run may pay again)."""
    possibly_paid_twice: list[str] = field(default_factory=list)
    """The scene of each request sent again after its answer was lost (a scene once per
    re-send): each of them the service may have made (and billed) twice."""
    flow_run_id: str | None = None
    """The Prefect flow run that made it, for a link to the Prefect UI."""
    assembly: dict[str, int | bool] = field(default_factory=dict)
    """What assembling encoded: segments encoded and reused, whether the narration was."""
    cache: dict[str, float] = field(default_factory=dict)
    """What the run added to the local cache (MB), and what keeping the cache under
    `cache.max_gb` removed after it (MB and entries)."""
    outputs: list[str] = field(default_factory=list)
    """Every file the run wrote in its target, relative to it: all a later run may delete."""
