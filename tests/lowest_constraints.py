"""Print pip constraints pinning every runtime dependency to its declared lower bound.

`make test-lowest` installs the package with these constraints into `.venv-lowest`, so the
suite also runs against the oldest releases `pyproject.toml` allows (test tools stay newest).
Usage: `python tests/lowest_constraints.py [pyproject.toml]`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

# name, optional extras, version specifiers, optional environment marker
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?")
_LOWER = re.compile(r"(>=|==|~=)\s*([^,\s]+)")


def lowest_constraints(pyproject: Path) -> list[str]:
    """One `name==lower-bound` line per runtime dependency.

    Args:
        pyproject: The project's `pyproject.toml`.

    Returns:
        The constraint lines, in the order the dependencies are declared.

    Raises:
        ValueError: A dependency without a lower bound: the lowest run could not pin it.
    """
    lines = []
    for requirement in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        match = _REQUIREMENT.fullmatch(requirement)
        bounds = _LOWER.findall(match.group(3)) if match else []
        if match is None or not bounds:
            msg = f"{requirement!r} declares no lower bound to test against"
            raise ValueError(msg)
        marker = match.group(4) or ""
        lines.append(f"{match.group(1)}=={bounds[0][1]}{marker}")
    return lines


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(lowest_constraints(path)))
