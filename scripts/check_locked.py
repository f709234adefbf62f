"""Fail unless this environment holds exactly the versions in constraints.txt.

A dependency that drifts (SQLAlchemy 2.1 broke Prefect's scheduler while every test passed) is
caught before the tests run. After changing dependencies, `make lock` rewrites the file.

Usage: python scripts/check_locked.py [constraints.txt]
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def installed_versions(project: str) -> dict[str, str]:
    """What `pip freeze --exclude-editable` lists: every distribution but this project and
    pip's own tooling."""
    skipped = {canonical(project), "pip", "setuptools", "wheel"}
    found = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return {name: version for name, version in found.items() if name not in skipped}


def differences(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(locked.keys() | installed.keys()):
        want, have = locked.get(name), installed.get(name)
        if want == have:
            continue
        if have is None:
            lines.append(f"{name}: locked {want}, not installed")
        elif want is None:
            lines.append(f"{name}: {have} installed, not in the lock")
        else:
            lines.append(f"{name}: locked {want}, installed {have}")
    return lines


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "constraints.txt")
    found = differences(locked_versions(path), installed_versions("storyboard"))
    if found:
        print(f"the environment differs from {path} (make lock after changing dependencies):")
        print("\n".join(f"  {line}" for line in found))
        return 1
    print(f"environment matches {path} ({len(locked_versions(path))} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
