"""Storyboard folders made from the bundled demo recordings."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

DEMO_DIR = Path(__file__).resolve().parents[1] / "storyboards" / "demo"


def make_source(folder: Path, scenes: dict[str, str], storyboard: dict[str, Any]) -> Path:
    """A storyboard folder: demo recordings (scene id: demo file) and a storyboard.yaml."""
    folder.mkdir(parents=True)
    for scene_id, demo in scenes.items():
        shutil.copy(DEMO_DIR / demo, folder / f"{scene_id}{Path(demo).suffix}")
    (folder / "storyboard.yaml").write_text(yaml.safe_dump(storyboard), encoding="utf-8")
    return folder
