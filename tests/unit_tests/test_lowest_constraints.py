"""The lowest-versions run (`make test-lowest`) pins every runtime dependency to its floor."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest
import tomllib

from tests.lowest_constraints import lowest_constraints

ROOT = Path(__file__).resolve().parents[2]


def test_every_runtime_dependency_is_pinned_to_its_lower_bound(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[project]\ndependencies = [\n"
        '  "a>=1.4.2,<2.0",\n  "b[x] <3, >= 2.7",\n'
        "  \"c~=1.1; sys_platform == 'linux'\",\n]\n"
    )
    assert lowest_constraints(pyproject) == [
        "a==1.4.2",
        "b==2.7",
        "c==1.1; sys_platform == 'linux'",
    ]
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert len(lowest_constraints(ROOT / "pyproject.toml")) == len(declared)


def test_a_dependency_without_a_floor_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["a<2"]\n')
    with pytest.raises(ValueError, match="no lower bound"):
        lowest_constraints(pyproject)


@pytest.mark.skipif(
    "LOWEST_CONSTRAINTS" not in os.environ, reason="only in the lowest-versions run"
)
def test_the_lowest_run_has_the_lowest_versions_installed() -> None:
    for line in Path(os.environ["LOWEST_CONSTRAINTS"]).read_text().split("\n"):
        if not line.strip():
            continue
        name, version = line.split(";")[0].split("==")
        installed = importlib.metadata.version(name)
        assert installed.split(".")[: len(version.split("."))] == version.split("."), name
