"""The domain stays pure: standard library and its own modules only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "gateway" / "domain"


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    """No I/O library, no other gateway layer: the rules stay testable and portable."""
    offenders = []
    for path in sorted(DOMAIN.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if name.startswith("gateway.domain") or top in sys.stdlib_module_names or top == "__future__":
                    continue
                offenders.append(f"{path.name}: {name}")
    assert offenders == []
