"""Take the README's picture of the Prefect UI's approval form (docs/approval-form.png).

A Prefect server with its UI on a free loopback port, the bundled demo run with
`--approve-images` on the draft backend until it pauses, then Debian's Chromium (Selenium,
/usr/bin/chromedriver) opens the paused flow run and clicks Resume. The form is answered with
its defaults (every image approved) so the run ends.

    .venv/bin/python scripts/approval_form_screenshot.py [OUTPUT.png]
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if callable(condition) and condition():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"gave up waiting for {what}")


def _shoot(ui: str, run_id: str, output: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1400,1150", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"{ui}/runs/flow-run/{run_id}")
        _wait(lambda: _resume_button(driver) is not None, 60, "the Resume button")
        button = _resume_button(driver)
        assert button is not None
        button.click()
        time.sleep(3)
        driver.save_screenshot(str(output))
    finally:
        driver.quit()


def _resume_button(driver: webdriver.Chrome) -> object | None:
    found = [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == "Resume"]
    return found[0] if found else None


def main(output: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="approval-shot-"))
    port = _free_port()
    ui, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "home"),
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--analytics-off",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: httpx.get(f"{api}/health").status_code == 200, 180, "the Prefect server")
        board = work / "lion"
        shutil.copytree(ROOT / "storyboards" / "demo", board)
        (work / "quick.yaml").write_text("generation:\n  approval_poll_s: 1\n")
        run_env = {**env, "PREFECT_API_URL": api, "STORYBOARD_CACHE_DIR": str(work / "cache")}
        run = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                str(BIN / "storyboard"),
                "run",
                str(board),
                "--out",
                str(work / "out"),
                "--config",
                str(work / "quick.yaml"),
                "--approve-images",
            ],
            env=run_env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pending = work / "out" / "approval" / "pending.json"
        _wait(pending.exists, 300, "the run to pause")
        run_id = json.loads(pending.read_text())["flow_run_id"]
        _shoot(ui, run_id, output)
        httpx.post(f"{api}/flow_runs/{run_id}/resume", json={"run_input": {}}, timeout=30)
        run.wait(timeout=300)
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "approval-form.png")
