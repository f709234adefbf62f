"""Each deployment is defined once (flows/deployments.py): `storyboard serve` follows that
definition, and prefect.yaml is checked equal to it."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
import yaml

from configs.settings import Settings
from flows.deployments import (
    LISTENED,
    ON_UPLOAD,
    SERVED,
    listened_deployments,
    runner_deployments,
    schedule_of,
    upload_trigger,
)
from tests.helpers import PROJECT_ROOT

DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())[
    "deployments"
]
BY_NAME = {deployment["name"]: deployment for deployment in DEPLOYMENTS}


def _flow_at(entrypoint: str) -> Any:
    module_path, _, name = entrypoint.partition(":")
    return getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), name)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_parameters_fit_its_flow(deployment: dict[str, Any]) -> None:
    flow = _flow_at(deployment["entrypoint"])
    accepted = inspect.signature(flow.fn).parameters
    parameters = deployment["parameters"]
    assert set(parameters) <= set(accepted), set(parameters) - set(accepted)
    Settings.model_validate(parameters.get("settings", {}))
    assert deployment["work_pool"]["name"].startswith("storyboard-")


@pytest.mark.parametrize("definition", SERVED, ids=[d.name for d in SERVED])
def test_prefect_yaml_declares_each_served_deployment_as_defined(definition: Any) -> None:
    declared = BY_NAME[definition.name]
    assert declared["entrypoint"] == definition.entrypoint
    assert declared["description"] == definition.description
    schedules = declared.get("schedules", [])
    if definition.scheduled:
        assert schedules == [{"interval": Settings().watch.interval_s}]
    else:
        assert schedules == []


def test_serve_builds_the_defined_deployments() -> None:
    settings = Settings()
    served = runner_deployments(
        settings, "draft", "in", "out", 1.0, schedule_of(settings, None, None)
    )
    for definition, deployment in zip(SERVED, served, strict=True):
        assert deployment.name == definition.name
        assert deployment.entrypoint == definition.entrypoint
        assert deployment.description == definition.description
        assert bool(deployment.schedules) == definition.scheduled


def test_every_other_declared_deployment_is_a_variant_of_a_defined_flow() -> None:
    defined = {definition.entrypoint for definition in (*SERVED, *LISTENED)}
    defined |= {"flows/on_dask.py:storyboard"}
    assert {deployment["entrypoint"] for deployment in DEPLOYMENTS} <= defined
    assert _flow_at("flows/on_dask.py:storyboard").name == "storyboard"


def test_there_are_process_docker_gpu_and_dask_deployments() -> None:
    assert {
        "drop-folder",
        "on-demand",
        "on-demand-docker",
        "on-demand-gpu",
        "on-demand-dask",
    } <= set(BY_NAME)


def test_prefect_yaml_declares_on_upload_with_the_trigger_listen_serves() -> None:
    declared = BY_NAME[ON_UPLOAD.name]
    assert (declared["entrypoint"], declared["description"]) == (
        ON_UPLOAD.entrypoint,
        ON_UPLOAD.description,
    )
    (trigger,) = declared["triggers"]
    expected = upload_trigger(float(trigger["within"])).model_dump(mode="json")
    for field in ("posture", "after", "expect", "for_each", "threshold", "within", "parameters"):
        assert trigger[field] == expected[field] or sorted(trigger[field]) == sorted(
            expected[field]
        ), field


def test_listen_serves_on_upload_with_its_trigger_and_a_sweep_of_each_source() -> None:
    sources = ["s3://a/in/", "s3://b/"]
    served = listened_deployments(Settings(), "draft", sources, "s3://out/", 12.0, 3600.0)
    assert [d.name for d in served] == ["on-upload", "drop-folder", "drop-folder-2"]
    assert served[0].parameters["sources"] == sources
    assert served[0].triggers[0].within.total_seconds() == 12.0
    assert [d.parameters["source"] for d in served[1:]] == sources
    assert all(d.schedules for d in served[1:])
