"""The documents that ship with the product stand on their own, and the partner API's two say the same thing.

Every relative link of the README and of docs/ leads to a file of the repository: a reader who has the product
can follow it (the rules live in docs/rules.md, nowhere outside). The partner API's two documents,
docs/partner-api.md (the contract in prose) and docs/partner-api.openapi.yaml (the reference a partner generates
code from), state the same rules for the feeds, as the gateway applies them (gateway/service/feeds.py,
gateway/service/appliers/acknowledgements.py).

Each rule is a statement that both must make, in the same words once white space and emphasis are set aside; a
rule the gateway does not follow must appear in neither. The OpenAPI document is read operation by operation
(with PyYAML, which the development tools bring; without it, as one text), so that each feed's description states
the rules of that feed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a markdown link's target
PROSE = ROOT / "docs" / "partner-api.md"
REFERENCE = ROOT / "docs" / "partner-api.openapi.yaml"

# the rules of the feeds: what both documents state
PAGE_ORDER = "Items apply in page order"
DUPLICATES = (
    "The same page as the last one applied is a duplicate.",
    "A page is known by its feed, the cursor the gateway sent and its raw body.",
    "an unchanged page is not applied again and the cursor still moves on.",
    "A page that repeats an older one after a different page",
    "is applied: it is news.",
)
# rules the gateway does not follow, in the words an older document used
WRONG = (
    re.compile(r"byte[ -]for[ -]byte", re.IGNORECASE),  # any page equal to one applied before: a duplicate
    re.compile(r"applied first,? then", re.IGNORECASE),  # status moves before confirmations
    re.compile(r"not in page order", re.IGNORECASE),
    re.compile(r"status moves? (?:of a page )?(?:is|are) applied first", re.IGNORECASE),
)


def plain(text: str) -> str:
    """The words of a text: markdown emphasis and code marks dropped, white space and line breaks as one space."""
    return re.sub(r"\s+", " ", text.replace("**", "").replace("`", "")).strip()


def feed_descriptions() -> dict[str, str]:
    """Each feed operation's description in the OpenAPI document (without PyYAML: the whole document for each)."""
    text = REFERENCE.read_text(encoding="utf-8")
    try:
        import yaml  # noqa: PLC0415 - optional: brought by schemathesis, the fallback reads the text
    except ImportError:  # pragma: no cover - the development tools install it
        return {"/stock": plain(text), "/acknowledgements": plain(text)}
    document: dict[str, Any] = yaml.safe_load(text)
    return {path: plain(document["paths"][path]["get"]["description"]) for path in ("/stock", "/acknowledgements")}


def test_both_documents_say_acknowledgement_items_apply_in_page_order() -> None:
    """Status moves and confirmations of one page apply in the order the page gives them."""
    assert PAGE_ORDER in plain(PROSE.read_text(encoding="utf-8"))
    assert PAGE_ORDER in feed_descriptions()["/acknowledgements"]


@pytest.mark.parametrize("statement", DUPLICATES)
def test_both_documents_give_the_same_duplicate_rule_for_every_feed(statement: str) -> None:
    """A page is a duplicate of the last one applied at the same cursor only; an older page again is news."""
    assert statement in plain(PROSE.read_text(encoding="utf-8"))
    for path, description in feed_descriptions().items():
        assert statement in description, path


@pytest.mark.parametrize("document", [PROSE, REFERENCE], ids=lambda path: path.name)
def test_neither_document_states_a_rule_the_gateway_does_not_follow(document: Path) -> None:
    """No 'byte for byte equal to any applied page' duplicate rule, no 'status moves first' order."""
    text = plain(document.read_text(encoding="utf-8"))
    found = [match.group(0) for pattern in WRONG for match in pattern.finditer(text)]
    assert found == [], f"{document.name} states a rule the gateway does not follow: {found}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_leads_to_a_file_of_the_repository(document: Path) -> None:
    """No link to ../shared or anywhere else a user of the product cannot follow; no link to a missing file."""
    text = document.read_text(encoding="utf-8")
    assert "shared/" not in text
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a web address, or a place in the same document
        path = (document.parent / target.split("#")[0]).resolve()
        assert ROOT in path.parents, f"{document.name} links outside the repository: {target}"
        assert path.exists(), f"{document.name} links to a missing file: {target}"
