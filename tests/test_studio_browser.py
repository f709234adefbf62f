"""The studio in a real browser: Debian's Chromium driven by Selenium through Debian's
chromedriver (nothing downloaded), its fake microphone fed from a spoken recording. A person
records a new narration for one scene; the studio's own worker re-renders that scene with the
new transcript while the other comes from the cache, and the old recording is in the history."""

from __future__ import annotations

import json
import shutil
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from clients.media.audio import decode_audio
from studio.app import create_app
from studio.config import StudioConfig
from studio.renders import LocalRender, RenderService
from tests.helpers import DEMO_DIR, read_manifest, run_cli
from tests.servers import free_port, serving

pytestmark = pytest.mark.slow

LEO = "characters:\n  - name: Leo\n    references: [leo.png]\n    names: [lion]\n"
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")


def _spoken_wav(source: Path, output: Path) -> float:
    """`source` as the 16-bit WAV Chromium's fake microphone plays; its seconds."""
    rate = 48_000
    samples = decode_audio(source, rate)
    with wave.open(str(output), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return len(samples) / rate


@pytest.fixture
def studio(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[tuple[str, Path, Path]]:
    """A rendered storyboard (dawn, river) and the studio over it, served by uvicorn."""
    board, target = tmp_path / "src" / "alpha", tmp_path / "out"
    board.mkdir(parents=True)
    for name in ("dawn.ogg", "river.mp3"):
        shutil.copy(DEMO_DIR / name, board / name)
    Image.new("RGB", (40, 30), (200, 150, 40)).save(board / "leo.png")
    (board / "storyboard.yaml").write_text(LEO, encoding="utf-8")
    first = run_cli(["run", str(board), "--out", str(target / "alpha")], cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    config = StudioConfig(source=str(tmp_path / "src"), target=str(target), render_env=cli_env)
    renders = RenderService(config, lambda: LocalRender(config, "the test"), claim_poll_s=0.2)
    with serving(create_app(config, renders), free_port()) as address:
        yield address, board, target / "alpha"


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMEDRIVER.is_file(), "Debian's chromium-driver is missing (make test installs it)"
    spoken = tmp_path / "spoken.wav"
    seconds = _spoken_wav(DEMO_DIR / "night.ogg", spoken)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={spoken}",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.spoken_seconds = seconds
    yield driver
    driver.quit()


def _text(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return str(found[0].text) if found else ""


def _wait(driver: Any, condition: Any, timeout_s: float, what: str) -> Any:
    """`condition`, polled until it holds: an element the page replaced while it was being
    read (the scene cards are redrawn as a render reports) is read again at the next poll."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(
        driver,
        timeout_s,
        poll_frequency=0.3,
        ignored_exceptions=(StaleElementReferenceException,),
    )
    return waiting.until(condition, what)


def loaded(driver: Any, selector: str) -> str:
    """The address of the picture `selector` shows, once it is loaded ("" until then)."""
    return str(
        driver.execute_script(
            "var i = document.querySelector(arguments[0]);"
            "return i && i.complete && i.naturalWidth ? i.src : ''",
            selector,
        )
    )


def change_a_reference(chromium: Any, board: Path) -> None:
    """Leo's panel shows its reference and the scene that shows it; a new picture chosen in
    its form replaces the reference, and the panel shows the new one."""
    from selenium.webdriver.common.by import By

    assert "shown in dawn" in _text(chromium, "#character-1")
    _wait(chromium, lambda d: loaded(d, "#character-1 img"), 20, "the reference is shown")
    new = board.parent / "leo-new.png"
    Image.new("RGB", (30, 40), (20, 200, 60)).save(new)
    form = "#character-1 figure form"
    chromium.find_element(By.CSS_SELECTOR, f"{form} input[type=file]").send_keys(str(new))
    chromium.find_element(By.CSS_SELECTOR, f"{form} button").click()
    _wait(chromium, lambda d: "reference 1 changed" in _text(d, "#notice"), 30, "it is saved")
    _wait(
        chromium,
        lambda d: "file=leo-reference-" in loaded(d, "#character-1 img"),
        20,
        "the panel shows the new reference",
    )
    saved = yaml.safe_load((board / "storyboard.yaml").read_text())["characters"][0]
    assert (board / saved["references"][0]).read_bytes() == new.read_bytes()


def test_a_narration_recorded_in_the_browser_re_renders_its_scene_alone(
    studio: tuple[str, Path, Path], chromium: Any
) -> None:
    from selenium.webdriver.common.by import By

    base, board, target = studio
    before = read_manifest(target).set_index("scene_id")
    chromium.get(f"{base}/storyboard?board=alpha")
    _wait(chromium, lambda d: "the test" in _text(d, "#renderer"), 20, "the renderer is named")

    change_a_reference(chromium, board)
    chromium.execute_script("document.querySelector('#scene-1 details').open = true")
    record = chromium.find_element(By.CSS_SELECTOR, "#scene-1 button[data-record]")
    record.click()
    _wait(chromium, lambda d: _text(d, "#notice").startswith("recording"), 20, "recording")
    time.sleep(chromium.spoken_seconds + 0.5)  # the fake microphone speaks the night narration
    record.click()
    _wait(chromium, lambda d: "saved" in _text(d, "#notice"), 30, "the recording is saved")
    assert _text(chromium, "#notice").startswith("dawn: new recording saved as dawn.webm")

    _wait(chromium, lambda d: "done" in _text(d, "#render-status"), 180, "the render finishes")
    heard = _wait(
        chromium,
        lambda d: "stars" in _text(d, "#scene-1").lower() and _text(d, "#scene-1"),
        30,
        "the card shows the new transcript",
    )
    assert "rock" in heard.lower()

    after = read_manifest(target).set_index("scene_id")
    assert "stars" in after.loc["dawn", "transcript"].lower()
    assert after.loc["dawn", "audio_sha256"] != before.loc["dawn", "audio_sha256"]
    assert after.loc["river", "transcript"] == before.loc["river", "transcript"]
    report = json.loads((target / "run.json").read_text())
    assert report["cache_hits"] >= 2, "river's image and clip come from the cache"
    history = list((board / ".storyboard" / "history" / "dawn").iterdir())
    assert len(history) == 1 and history[0].name.endswith("-dawn.ogg"), history
    assert history[0].read_bytes() == (DEMO_DIR / "dawn.ogg").read_bytes()
    errors = [e for e in chromium.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
