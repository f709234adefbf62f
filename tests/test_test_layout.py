"""Tests stand alone: no test module or conftest imports a test module or conftest. Shared
helpers live in `tests/helpers.py` and `tests/servers.py`, fakes in `testkit/fakes/`."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent


def _forbidden(module: str) -> bool:
    """Whether `module`, a dotted name in the tests package, is a test module or conftest."""
    last = module.rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def imports_of_tests(source: str, package: str = "tests") -> list[str]:
    """The test modules and conftests of `package` that `source` imports, anywhere in it
    (function bodies included), by `import`, `from ... import` or a relative import."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                alias.name
                for alias in node.names
                if alias.name.startswith(f"{package}.") and _forbidden(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = f"{package}.{base}" if base else package
            if base != package and not base.startswith(f"{package}."):
                continue
            if _forbidden(base):
                found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names if _forbidden(alias.name)]
    return found


def offences(folder: Path) -> dict[str, list[str]]:
    """By file name, what `folder`'s conftest.py and test_*.py import of the tests."""
    files = [*folder.glob("conftest.py"), *sorted(folder.glob("test_*.py"))]
    return {
        path.name: found
        for path in files
        if (found := imports_of_tests(path.read_text(encoding="utf-8")))
    }


def imports_of(source: str, package: str) -> list[str]:
    """Every module of `package` (or `package` itself) that `source` imports, anywhere in it."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found += [node.module] if node.module.split(".")[0] == package else []
    return found


def test_benchmarks_and_the_testkit_depend_on_nothing_under_tests() -> None:
    root = TESTS_DIR.parent
    files = [*sorted((root / "benchmarks").glob("*.py")), *sorted((root / "testkit").rglob("*.py"))]
    found = {
        path.relative_to(root).as_posix(): names
        for path in files
        if (names := imports_of(path.read_text(encoding="utf-8"), "tests"))
    }
    assert found == {}, "what benchmarks and tests share belongs in testkit/"
    assert imports_of("from tests.helpers import run_cli\nimport tests.servers", "tests") == [
        "tests.helpers",
        "tests.servers",
    ]


def test_no_test_module_or_conftest_imports_another() -> None:
    assert offences(TESTS_DIR) == {}, (
        "import shared code from tests.helpers, tests.servers or testkit.fakes instead"
    )


@pytest.mark.parametrize(
    "source",
    [
        "from {tests}.test_cli import run_cli\n",
        "from {tests}.conftest import DEMO_DIR\n",
        "import {tests}.test_s3\n",
        "import {tests}.conftest as c\n",
        "from {tests} import test_cli\n",
        "from {tests} import conftest\n",
        "from .test_cli import run_cli\n",
        "from . import conftest\n",
        "def f():\n    from {tests}.test_nvidia_pipeline import nvidia_env\n",
        "class C:\n    def m(self):\n        if True:\n            import {tests}.test_cli\n",
    ],
)
def test_the_checker_finds_imports_of_test_modules(source: str) -> None:
    # (`{tests}` keeps a grep for such imports from finding these examples)
    assert imports_of_tests(source.format(tests="tests"))


@pytest.mark.parametrize(
    "source",
    [
        "from tests.helpers import run_cli\n",
        "from tests.servers import free_port\n",
        "from testkit.fakes.backends import CountingBackend\n",
        "import testkit.fakes.nvidia_server\n",
        "from tests import helpers\n",
        "from tasks.transcribe import transcribe_recordings\n",
        "import pytest\n",
    ],
)
def test_the_checker_lets_helpers_fakes_and_project_code_through(source: str) -> None:
    assert imports_of_tests(source) == []


def test_the_checker_fails_on_a_folder_that_breaks_the_rule(tmp_path: Path) -> None:
    shutil.copy(TESTS_DIR / "conftest.py", tmp_path)
    shutil.copy(TESTS_DIR / "test_generate.py", tmp_path)
    assert offences(tmp_path) == {}
    with (tmp_path / "test_generate.py").open("a", encoding="utf-8") as scratch:
        scratch.write(
            "\n\ndef test_leaning() -> None:\n    from tests" + ".test_cli import run_cli\n"
        )
    with (tmp_path / "conftest.py").open("a", encoding="utf-8") as scratch:
        scratch.write("\nfrom tests" + ".conftest import DEMO_DIR\n")
    assert offences(tmp_path) == {
        "conftest.py": ["tests.conftest"],
        "test_generate.py": ["tests.test_cli"],
    }
