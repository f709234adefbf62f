"""prefect.yaml: every deployment points at a real flow and passes it parameters it accepts."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
import yaml

from configs.settings import Settings
from flows.runners import parse_task_runner
from tests.conftest import PROJECT_ROOT

DEPLOYMENTS: list[dict[str, Any]] = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())[
    "deployments"
]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_deployment_parameters_fit_its_flow(deployment: dict[str, Any]) -> None:
    module_path, _, flow_name = deployment["entrypoint"].partition(":")
    module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, flow_name)
    accepted = inspect.signature(flow.fn).parameters
    parameters = deployment["parameters"]
    assert set(parameters) <= set(accepted), set(parameters) - set(accepted)
    Settings.model_validate(parameters.get("settings", {}))
    parse_task_runner(parameters.get("task_runner", "thread"))
    assert deployment["work_pool"]["name"].startswith("storyboard-")


def test_there_are_process_docker_gpu_and_dask_deployments() -> None:
    names = {deployment["name"] for deployment in DEPLOYMENTS}
    assert {
        "drop-folder",
        "on-demand",
        "on-demand-docker",
        "on-demand-gpu",
        "on-demand-dask",
    } <= names
