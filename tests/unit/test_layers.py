"""The layers import in one direction only (docs/architecture.md): the rules know nothing of the rest, the store
knows no use case, a transport knows neither the store nor the use cases, and no use case knows an entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
ENTRY_POINTS = ("gateway.cli", "gateway.platform_api", "gateway.worker", "gateway.bootstrap")

# layer -> the gateway packages and modules it must not import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "domain": ("gateway.formats", "gateway.store", "gateway.service", "gateway.transport", "gateway.settings",
               "gateway.logs", *ENTRY_POINTS),
    "formats": ("gateway.store", "gateway.service", "gateway.transport", *ENTRY_POINTS),
    "store": ("gateway.service", "gateway.transport", *ENTRY_POINTS),
    "transport": ("gateway.store", "gateway.service", *ENTRY_POINTS),
    "service": ENTRY_POINTS,
}  # fmt: skip


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    """Each module of the layer imports none of the packages the layer must not know."""
    offenders = [
        f"{path.relative_to(GATEWAY)}: {name}"
        for path in sorted((GATEWAY / layer).rglob("*.py"))
        if "migrations" not in path.parts
        for name in _imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[layer])
    ]
    assert offenders == []
