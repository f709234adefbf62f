"""Fail when a module outside tests/ is over 400 lines or a function over 60 (make lint).

Usage: python scripts/check_sizes.py PACKAGE_OR_FOLDER ...
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def oversized(path: Path) -> Iterator[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.count("\n")
    if lines > MAX_MODULE_LINES:
        yield f"{path}: {lines} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield (
                    f"{path}:{node.lineno}: {node.name} is {length} lines "
                    f"(at most {MAX_FUNCTION_LINES})"
                )


def main(roots: list[str]) -> int:
    problems = [
        problem
        for root in roots
        for path in sorted(Path(root).rglob("*.py"))
        for problem in oversized(path)
    ]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"no module over {MAX_MODULE_LINES} lines, no function over {MAX_FUNCTION_LINES}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
