"""The studio answers only to its own name (issue 28): a DNS-rebinding page reaches it under
another Host and gets 400 before any handler; a token visit never redirects off the studio."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studio.app import create_app
from studio.config import StudioConfig
from studio.renders import LocalRender, RenderService
from tests.helpers import DEMO_DIR, run_cli
from tests.servers import free_port, serving

TOKEN = "s3cret-studio-token"


def serve(config: StudioConfig) -> Iterator[str]:
    renders = RenderService(config, lambda: LocalRender(config, "the test"))
    with serving(create_app(config, renders), config.port) as address:
        yield address


@pytest.fixture
def source(tmp_path: Path) -> Path:
    board = tmp_path / "src" / "alpha"
    board.mkdir(parents=True)
    shutil.copy(DEMO_DIR / "dawn.ogg", board / "dawn.ogg")
    return tmp_path / "src"


@pytest.fixture
def studio(source: Path, tmp_path: Path) -> Iterator[str]:
    config = StudioConfig(
        source=str(source),
        target=str(tmp_path / "out"),
        port=free_port(),
        allowed_hosts=("studio.lan",),
    )
    yield from serve(config)


def test_only_the_studios_own_names_are_answered(studio: str, source: Path) -> None:
    port = studio.rsplit(":", 1)[1]
    with httpx.Client(base_url=studio) as client:
        for name in ("127.0.0.1", "localhost", "studio.lan", "STUDIO.LAN"):
            answer = client.get("/", headers={"Host": f"{name}:{port}"})
            assert answer.status_code == 200, (name, answer.text)
        for name in ("attacker.example", "127.0.0.1.attacker.example", "lan"):
            page = client.get("/", headers={"Host": f"{name}:{port}"})
            assert page.status_code == 400 and "csrf" not in page.headers.get("set-cookie", "")
            edit = client.post(
                "/storyboard/scene/dawn/take",
                params={"board": "alpha"},
                data={"seed": "7"},
                headers={"Host": f"{name}:{port}", "Origin": f"http://{name}:{port}"},
            )
            assert edit.status_code == 400, edit.text
    assert not (source / "alpha" / "storyboard.yaml").exists(), "nothing was written"


def test_a_token_visit_redirects_only_within_the_studio(source: Path, tmp_path: Path) -> None:
    config = StudioConfig(
        source=str(source), target=str(tmp_path / "out"), port=free_port(), token=TOKEN
    )
    for base in serve(config):
        with httpx.Client(base_url=base) as client:
            for path in ("//evil.example/x", "/\\evil.example/x", "/storyboard"):
                answer = client.get(f"{base}{path}", params={"token": TOKEN})
                assert answer.status_code == 303, answer.text
                location = answer.headers["location"]
                assert location.startswith("/") and not location.startswith(("//", "/\\"))
                assert httpx.URL(base).join(location).host == "127.0.0.1"


def test_a_wildcard_bind_must_name_its_hosts(source: Path, tmp_path: Path) -> None:
    env = {**os.environ, "STORYBOARD_STUDIO_TOKEN": TOKEN}
    command = ["studio", str(source), "--out", str(tmp_path / "out"), "--host", "0.0.0.0"]
    result = run_cli(command, env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "--allowed-host" in result.stderr


def test_a_taken_port_is_said_in_one_line_before_any_url(source: Path, tmp_path: Path) -> None:
    env = {**os.environ, "STORYBOARD_STUDIO_TOKEN": TOKEN}
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        command = ["studio", str(source), "--out", str(tmp_path / "out"), "--port", str(port)]
        result = run_cli(command, env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "http://" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and f"port {port}" in result.stderr
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr
