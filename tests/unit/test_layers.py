"""The layers import in one direction only (docs/architecture.md): the rules know nothing of the rest, the store
knows no use case, a transport knows neither the store nor the use cases, no use case knows the views or an entry
point, and the views (the JSON shapes) know no entry point and no transport."""

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
    "service": ("gateway.views", *ENTRY_POINTS),
    "views": ("gateway.transport", *ENTRY_POINTS),
}  # fmt: skip


def _modules(layer: str) -> list[Path]:
    """The modules of a layer: a package's, or a module of its own (gateway/views.py)."""
    single = GATEWAY / f"{layer}.py"
    return [single] if single.exists() else sorted((GATEWAY / layer).rglob("*.py"))


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
        for path in _modules(layer)
        if "migrations" not in path.parts
        for name in _imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[layer])
    ]
    assert offenders == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_every_layer_checked_has_modules(layer: str) -> None:
    """A layer renamed or moved cannot pass its rule by having nothing left to check."""
    assert _modules(layer)
