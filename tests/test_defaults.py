"""One source of defaults: the typed settings. The documented defaults, the command line and
the deployments all resolve to them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from configs.settings import Settings, load_settings
from flows.deployments import SERVED, runner_deployments, schedule_of, served_parameters
from tests.helpers import PROJECT_ROOT

ENVIRONMENT_DEPENDENT = {"cache_dir", "shared_cache"}
DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())[
    "deployments"
]


def _differences(documented: Any, defined: Any, where: str = "") -> list[str]:
    if isinstance(documented, dict) and isinstance(defined, dict):
        keys = (set(documented) | set(defined)) - (ENVIRONMENT_DEPENDENT if not where else set())
        return [
            difference
            for key in sorted(keys)
            for difference in _differences(
                documented.get(key, "<missing>"), defined.get(key, "<missing>"), f"{where}{key}."
            )
        ]
    return [] if documented == defined else [f"{where.rstrip('.')}: {documented!r} != {defined!r}"]


def test_the_documented_defaults_equal_the_settings() -> None:
    documented = yaml.safe_load((PROJECT_ROOT / "configs" / "defaults.yaml").read_text())
    assert _differences(documented, Settings().model_dump(mode="json")) == []


def test_the_comparison_catches_a_drifted_or_missing_default() -> None:
    defined = Settings().model_dump(mode="json")
    drifted = {**defined, "assembly": {**defined["assembly"], "fps": 30}}
    missing = {**defined, "watch": {"interval_s": 60.0, "cron": None}}
    assert _differences(drifted, defined) == ["assembly.fps: 30 != 24"]
    assert _differences(missing, defined) == ["watch.settle_s: '<missing>' != 30.0"]


def test_the_command_line_without_a_config_gets_the_defaults() -> None:
    assert load_settings() == Settings()


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_a_deployment_resolves_to_the_settings_the_command_line_would_use(
    deployment: dict[str, Any],
) -> None:
    given = deployment["parameters"].get("settings", {})
    # What Prefect does with the parameter (pydantic validation of the flow's `settings`) ...
    as_deployed = Settings.model_validate(given)
    # ... and what `storyboard run --config FILE` does with the same mapping in FILE.
    assert as_deployed == load_settings(None, given)


def test_served_deployments_carry_the_settings_they_were_served_with(tmp_path: Any) -> None:
    settings = load_settings(None, {"assembly": {"fps": 12}, "generation": {"concurrency": 2}})
    for definition in SERVED:
        parameters = served_parameters(definition, settings, "draft", "in", "out", 5.0)
        assert Settings.model_validate(parameters["settings"]) == settings
    schedule = schedule_of(settings, None, None)
    assert schedule == {"interval": settings.watch.interval_s}
    deployments = runner_deployments(settings, "draft", "in", "out", 5.0, schedule)
    assert [d.name for d in deployments] == [d.name for d in SERVED]
