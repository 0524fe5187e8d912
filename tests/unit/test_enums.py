"""Message kinds, outbox states, item outcomes and the kinds of inbound item are enumerations named from one
place: no bare string of their values is left in gateway/ (outside the enumerations themselves and the frozen
migrations), and their values are the words the store's schema, the configuration and the documents use."""

from __future__ import annotations

import ast
import json
import re
from enum import StrEnum
from pathlib import Path

import pytest

from gateway.domain.messages import MessageKind, OutboxState
from gateway.domain.outcomes import Outcome
from gateway.formats.pages import Feed
from gateway.formats.rows import Kind
from gateway.store import schema
from gateway.transport.http import PartnerApi

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"
MIGRATIONS = GATEWAY / "store" / "migrations"
VOCABULARIES: tuple[type[StrEnum], ...] = (MessageKind, OutboxState, Outcome, Kind, Feed)
WORDS = {member.value for vocabulary in VOCABULARIES for member in vocabulary}

# module (under gateway/) -> a value that stands there as a literal on purpose -> why it is not the vocabulary's word
ALLOWED: dict[str, dict[str, str]] = {
    "cli/ats.py": {"stock": "a column heading", "ats": "a column heading"},
    "cli/commands.py": {"ats": "a command's name", "stock": "a command's name"},
    "cli/ledger.py": {"applied": "a column heading (rows applied)"},
    "cli/status.py": {"dead": "a column heading (dead letters)"},
    "formats/export.py": {"ats": "a column of the ATS export files"},
    "secrets.py": {"empty": "why a secret cannot be used (SecretError.reason), not an item's outcome"},
    "service/channels.py": {"ats": "a field of a channel ATS message's payload"},
    "service/items.py": {"applied": "the verb of an item's summary line"},
    "service/bundles.py": {"applied": "the verb of a bundle's summary line"},
    "service/publish/attempts.py": {"delivered": "a delivery attempt's outcome in its log line (delivered | failed)"},
    "service/publish/routes.py": {"orders": "an export file's name prefix", "ats": "an export file's name prefix"},
    "store/sql/level_statements.py": {"'stock'": "a table's name, quoted as a regclass (the planner's row count)"},
    "store/schema.py": {
        "stock": "a table's name",
        "orders": "a table's name",
        "confirmations": "a table's name",
        "caps": "a table's name",
    },
    "transport/http.py": {
        "stock": "the stock feed's URL path",
        "acknowledgements": "the acknowledgements feed's URL path",
        "ats": "the ATS deliveries' URL path, and a field of a delivered item",
    },
    "views.py": {"stock": "a JSON field", "ats": "a JSON field", "confirmations": "a JSON field (an order's)"},
}


def _modules() -> list[Path]:
    return [path for path in sorted(GATEWAY.rglob("*.py")) if MIGRATIONS not in path.parents]


def _is_enumeration(node: ast.ClassDef) -> bool:
    return any(isinstance(base, ast.Name) and base.id in ("StrEnum", "Enum") for base in node.bases)


def _skipped(tree: ast.Module) -> set[int]:
    """The constants that are no use of a word: docstrings, and the members' values of an enumeration."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skipped.add(id(first.value))
        if isinstance(node, ast.ClassDef) and _is_enumeration(node):
            skipped.update(id(n.value) for n in node.body if isinstance(n, ast.Assign))
    return skipped


def _words_in(path: Path) -> list[tuple[int, str]]:
    """(line, word) of each string literal that is a word of the vocabularies, or quotes one inside SQL text."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _skipped(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skipped:
            continue
        if node.value in WORDS:
            found.append((node.lineno, node.value))
        found.extend((node.lineno, f"'{word}'") for word in WORDS if f"'{word}'" in node.value)
    return sorted(found)


def test_no_bare_word_of_a_vocabulary_is_left_in_the_package() -> None:
    """A kind, a state or an outcome is named by its enumeration member; the literals left are other words that
    happen to be spelt alike (a column heading, a JSON field, a table, a URL path), each listed with why."""
    offenders = []
    for path in _modules():
        allowed = ALLOWED.get(path.relative_to(GATEWAY).as_posix(), {})
        offenders.extend(
            f"{path.relative_to(ROOT)}:{line}: {word!r}" for line, word in _words_in(path) if word not in allowed
        )
    assert offenders == []


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_every_literal_allowed_is_still_there(module: str) -> None:
    """An allowance that nothing uses any more is removed, so it cannot hide a bare word later."""
    path = GATEWAY / module
    assert path.exists()
    used = {word for _, word in _words_in(path)}
    assert set(ALLOWED[module]) <= used


def test_the_scan_sees_a_bare_word_and_a_quoted_one_in_sql(tmp_path: Path) -> None:
    """The scan itself: a comparison with a bare word and SQL quoting one are found; docstrings and the members
    of an enumeration are not."""
    module = tmp_path / "sample.py"
    module.write_text(
        '"""A docstring saying pending."""\n'
        "from enum import StrEnum\n"
        "class Local(StrEnum):\n"
        '    PENDING = "pending"\n'
        'ready = state == "dead"\n'
        "WHERE = \"outbox.state = 'pending'\"\n",
        encoding="utf-8",
    )
    assert _words_in(module) == [(5, "dead"), (6, "'pending'")]


def test_the_enumerations_keep_their_values() -> None:
    """The values are stored, configured and printed: they never change."""
    assert [k.value for k in MessageKind] == ["ats", "channel_ats", "order_closed", "order_export"]
    assert [s.value for s in OutboxState] == ["pending", "delivered", "dead", "superseded"]
    assert [k.value for k in Kind] == ["stock", "orders", "confirmations", "caps", "acknowledgements", "collections"]
    assert [f.value for f in Feed] == ["stock", "acknowledgements"]


@pytest.mark.parametrize("member", [MessageKind.CHANNEL_ATS, OutboxState.SUPERSEDED, Feed.ACKNOWLEDGEMENTS])
def test_a_member_is_its_word_in_json_text_and_comparisons(member: StrEnum) -> None:
    """JSON output, f-strings, str() and comparisons with the strings read back from the store see the word."""
    assert json.dumps({"x": member}) == json.dumps({"x": member.value})
    assert f"{member}" == str(member) == member.value
    assert member == member.value
    assert type(member)(member.value) is member


def _migrations() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted((MIGRATIONS / "versions").glob("0*.py")))


def test_the_states_and_outcomes_the_migrations_wrote_are_members() -> None:
    """The partial indexes and the default the (frozen) migrations wrote name words of the enumerations."""
    text = _migrations()
    states = set(re.findall(r"state = '(\w+)'", text))
    outcomes = set(re.findall(r"outcome = '(\w+)'", text))
    assert states == {OutboxState.PENDING}
    assert outcomes == {Outcome.APPLIED, Outcome.QUARANTINED}
    assert f"server_default=sa.text(\"'{OutboxState.PENDING}'\")" in text


def test_the_schema_says_what_the_migrations_said() -> None:
    """The conditions of the partial indexes and the state's default, built from the members, are the texts the
    migrations wrote (a store upgraded by them and one built from the schema are the same)."""
    text = _migrations()
    conditions = {
        str(index.dialect_options[dialect]["where"])
        for table in schema.metadata.tables.values()
        for index in table.indexes
        for dialect in ("sqlite", "postgresql")
        if index.dialect_options[dialect]["where"] is not None
    }
    # an applied entry claims its content unless it re-applies an earlier one on purpose (migration 0009)
    claimed = f"outcome = '{Outcome.APPLIED}' AND reapply_of IS NULL"
    assert conditions == {claimed, f"state = '{OutboxState.PENDING}'"}
    for condition in conditions:
        assert f'sa.text("{condition}")' in text
    default = schema.outbox.c.state.server_default
    assert default is not None
    assert str(getattr(default, "arg", "")) == f"'{OutboxState.PENDING}'"


def _lists(document: Path, key: str) -> list[list[str]]:
    """Each `key = [...]` list of a document's TOML examples."""
    found = re.findall(rf"^{key} = (\[[^\]]*\])", document.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [json.loads(value) for value in found]


@pytest.mark.parametrize("document", ["README.md", "docs/partner-api.md"])
def test_the_documents_configure_every_kind_of_message_by_its_word(document: str) -> None:
    """`api.deliver` in the documents' examples lists the kinds of message, in their order."""
    lists = _lists(ROOT / document, "deliver")
    assert lists
    assert all(found == [k.value for k in MessageKind] for found in lists)


def test_the_readme_follows_every_feed_by_its_word() -> None:
    """`api.feeds` in the README's example lists the feeds."""
    assert _lists(ROOT / "README.md", "feeds") == [[f.value for f in Feed]]


def test_the_reference_adapter_has_a_path_for_every_kind_and_feed_as_documented() -> None:
    """PartnerApi's paths are keyed by every kind of message and every feed, and are what docs/partner-api.md says."""
    text = (ROOT / "docs" / "partner-api.md").read_text(encoding="utf-8")
    for name, vocabulary in (("DELIVERY_PATHS", MessageKind), ("FEED_PATHS", Feed)):
        paths = getattr(PartnerApi, name)
        assert set(paths) == set(vocabulary)
        documented = re.search(rf"`{name}` \| [^`]*`(\{{[^`]*\}})`", text)
        assert documented is not None
        assert json.loads(documented.group(1)) == {str(key): value for key, value in paths.items()}


def test_the_readme_names_item_outcomes_by_their_words() -> None:
    """The ledger's outcomes and the items metric's outcomes, as the README lists them, are members."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    ledger = re.search(r"outcome ((?:`\w+`[\s/]*)+)", text)
    assert ledger is not None
    metric = re.search(r"gateway_items_total\{partner,kind,outcome\}` \(([^)]*)\)", text)
    assert metric is not None
    words = re.findall(r"`(\w+)`", ledger.group(1)) + re.split(r",\s*", metric.group(1))
    assert words
    assert set(words) <= {o.value for o in Outcome}
