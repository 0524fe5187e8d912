"""The alerting rules (deploy/prometheus/alerts.yml) and the runbook (docs/operations.md, "Alerts") agree.

Every alert has a section of its own name under "## Alerts", saying what it means, what to check first and how to
resolve it, and its `runbook` annotation links to that section (GitHub's anchor: the name in lower case); every
section there is an alert's. Every metric a rule reads is one the worker exports, and the README names it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "operations.md"
METRICS = ROOT / "gateway" / "worker" / "metrics.py"
README = ROOT / "README.md"
PARTS = ("**Means.**", "**First checks.**", "**Resolve.**")


def alerts() -> list[dict[str, Any]]:
    """Every alerting rule of the file, all groups together."""
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def names() -> list[str]:
    return [rule["alert"] for rule in alerts()]


def runbook_sections() -> dict[str, str]:
    """The `### NAME` sections of the runbook's "## Alerts" part, by name, with their text."""
    text = RUNBOOK.read_text(encoding="utf-8")
    part = re.search(r"^## Alerts\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert part is not None, "docs/operations.md has no '## Alerts' section"
    pieces = re.split(r"^### (.+)\n", part.group(1), flags=re.MULTILINE)
    return {pieces[i].strip(): pieces[i + 1] for i in range(1, len(pieces), 2)}


def test_the_rules_file_holds_alerts_with_distinct_names() -> None:
    """Seven alerts, none twice (a runbook anchor names one alert)."""
    assert len(names()) == len(set(names())) == 7


def test_every_alert_has_a_runbook_section_and_every_section_is_an_alert() -> None:
    """The runbook's Alerts part and the rules file name the same alerts, in the same order."""
    assert list(runbook_sections()) == names()


@pytest.mark.parametrize("name", names())
def test_each_runbook_section_says_what_it_means_what_to_check_and_how_to_resolve(name: str) -> None:
    """Each of the three parts, in that order, with something under it."""
    text = runbook_sections()[name]
    positions = [text.find(part) for part in PARTS]
    assert all(position >= 0 for position in positions), f"{name}: missing one of {PARTS}"
    assert positions == sorted(positions), name
    assert len(text.split()) > 60, f"{name}: a runbook entry of a few words helps nobody"


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_each_alert_links_its_runbook_section_and_has_a_severity_and_summary(rule: dict[str, Any]) -> None:
    """`runbook: docs/operations.md#name` (a path within the repository), severity page or ticket."""
    annotations = rule["annotations"]
    assert annotations["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert annotations["summary"]
    assert annotations["description"]


def test_every_metric_the_rules_read_is_exported_by_the_worker_and_named_in_the_readme() -> None:
    """A renamed metric would leave a rule that never fires: the names are a contract."""
    exported = METRICS.read_text(encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    read = {name for rule in alerts() for name in re.findall(r"\bgateway_[a-z_]+", rule["expr"])}
    assert read >= {"gateway_outbox_oldest_seconds", "gateway_outbox_oldest_limit_seconds"}
    for name in sorted(read):
        family = name.removesuffix("_total")  # prometheus_client adds it to a counter's name
        assert f'"{family}"' in exported, f"alerts.yml reads {name}, which the worker does not export"
        assert f"`{name}" in readme, f"the README does not name {name}"
