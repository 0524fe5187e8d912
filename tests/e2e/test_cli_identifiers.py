"""The `gateway` command and identifiers: one rule for every SKU, order id, assembly and collection it takes,
and nothing it prints can drive the terminal. Run in-process with click's CliRunner, on a real SQLite file."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import cli
from gateway.domain import identifiers
from tests.conftest import write_config

# what a terminal would act on: every control character but the line ends the commands write themselves
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")

BAD = ["A\x00B", "P1 ", " P1", "\u00a0P1", "x" * 129, "", "A\x1b[2JB", "A\u2028B", "A\x9bB"]

# every command and option that takes an identifier; {} is where the bad value goes
COMMANDS = [
    ["stock", "set", "--sku", "{}", "--quantity", "1"],
    ["order", "place", "--order-id", "{}", "--line", "A:1"],
    ["order", "place", "--order-id", "O1", "--line", "{}:1"],
    ["order", "place", "--order-id", "O1", "--line", "A:1", "--assembly", "{}", "--collection", "C"],
    ["order", "place", "--order-id", "O1", "--line", "A:1", "--assembly", "K", "--collection", "{}"],
    ["order", "set-status", "--order-id", "{}", "--status", "confirmed"],
    ["order", "confirm", "--order-id", "{}", "--sku", "A", "--quantity", "1", "--at", "2019-06-26T11:00:00Z"],
    ["order", "confirm", "--order-id", "O1", "--sku", "{}", "--quantity", "1", "--at", "2019-06-26T11:00:00Z"],
    ["order", "show", "--order-id", "{}"],
    ["ats", "--sku", "{}"],
    ["ats", "--sku", "A", "--assembly", "{}", "--collection", "C"],
    ["ats", "--sku", "A", "--assembly", "K", "--collection", "{}"],
    ["cap", "set", "--sku", "{}", "--assembly", "K", "--collection", "C", "--max", "1"],
    ["cap", "set", "--sku", "A", "--assembly", "{}", "--collection", "C", "--max", "1"],
    ["cap", "set", "--sku", "A", "--assembly", "K", "--collection", "{}", "--max", "1"],
    ["cap", "clear", "--sku", "{}", "--assembly", "K", "--collection", "C"],
    ["cap", "clear", "--sku", "A", "--assembly", "{}", "--collection", "C"],
    ["cap", "clear", "--sku", "A", "--assembly", "K", "--collection", "{}"],
    ["cap", "show", "--sku", "{}"],
    ["cap", "show", "--assembly", "{}"],
    ["collection", "set", "--assembly", "{}", "--collection", "C", "--pickup-on", "2026-12-11"],
    ["collection", "set", "--assembly", "K", "--collection", "{}", "--pickup-on", "2026-12-11"],
    ["collection", "show", "--assembly", "{}"],
]


class Gateway:
    """The command, invoked in-process against one configuration."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int = 0) -> Result:
        done = self.runner.invoke(cli, ["--config", str(self.config), "--log-level", "error", *args])
        assert done.exit_code == expect, (done.exit_code, done.output, done.exception)
        return done


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return Gateway(write_config(tmp_path, {"p": {"stock_mode": "advanced"}}))


def with_value(command: list[str], value: str) -> list[str]:
    """The command's words, --partner p, then its options with `value` in place of {}."""
    split = next(i for i, part in enumerate(command) if part.startswith("--"))
    return [*command[:split], "--partner", "p", *(part.replace("{}", value) for part in command[split:])]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_refuses_a_bad_identifier_with_exit_2_and_says_why(
    gateway: Gateway, command: list[str], value: str
) -> None:
    """The option names the value (escaped) and the identifier rule's reason; nothing runs."""
    done = gateway(*with_value(command, value), expect=2)
    assert f"is not an identifier: {identifiers.problem(value)}" in done.output
    assert not RAW_CONTROL.search(done.output)


def test_a_refused_identifier_changes_nothing(gateway: Gateway) -> None:
    """'P1 ' is not trimmed into P1: no SKU at all is created."""
    gateway("stock", "set", "--partner", "p", "--sku", "P1 ", "--quantity", "5", expect=2)
    gateway("stock", "set", "--partner", "p", "--sku", "A\x00B", "--quantity", "5", expect=2)
    assert json.loads(gateway("ats", "--partner", "p", "--json").output) == []


def test_identifiers_with_inner_spaces_and_letters_of_any_script_are_taken_as_given(gateway: Gateway) -> None:
    """'café 1' is a SKU; its order line, order id and channel too."""
    gateway("stock", "set", "--partner", "p", "--sku", "café 1", "--quantity", "5")
    gateway(
        "order", "place", "--partner", "p", "--order-id", "Commande n°1", "--line", "café 1:2",
        "--assembly", "Ruche 11", "--collection", "2026-12-01 soir",
    )  # fmt: skip
    [row] = json.loads(gateway("ats", "--partner", "p", "--sku", "café 1", "--json").output)
    assert (row["sku"], row["ats"]) == ("café 1", 3)


@pytest.mark.parametrize("line", ["A:²", "A:\u0661", "A:1.5", "A:0", "A:-1", "A", "A:" + "9" * 13])
def test_an_order_line_that_is_not_sku_colon_quantity_is_a_usage_error(gateway: Gateway, line: str) -> None:
    """QTY is 1 to 12 ASCII digits, at least 1: anything else is exit 2, never a traceback."""
    done = gateway("order", "place", "--partner", "p", "--order-id", "O1", "--line", line, expect=2)
    assert "Invalid value for '--line'" in done.output


def test_what_is_printed_shows_control_characters_as_escapes(gateway: Gateway, tmp_path: Path) -> None:
    """SKUs stored before the rule, in tables and messages: escaped; in --json, escaped by JSON itself."""
    gateway("stock", "set", "--partner", "p", "--sku", "OLD1", "--quantity", "5")
    gateway("stock", "set", "--partner", "p", "--sku", "OLD2", "--quantity", "6")
    with sqlite3.connect(tmp_path / "var" / "gateway.db") as db:  # as an older gateway could have stored them
        db.execute("UPDATE stock SET sku = 'A' || char(27) || '[2J' WHERE sku = 'OLD1'")
        db.execute("UPDATE stock SET sku = 'B' || char(8232) || char(155) WHERE sku = 'OLD2'")
    table = gateway("ats", "--partner", "p").output
    assert "A\\x1b[2J" in table
    assert "B\\u2028\\x9b" in table
    assert not RAW_CONTROL.search(table)
    listed = gateway("ats", "--partner", "p", "--json").output
    assert not RAW_CONTROL.search(listed)
    assert "\\u001b[2J" in listed
    assert "\\u2028\\u009b" in listed
    assert {row["sku"] for row in json.loads(listed)} == {"A\x1b[2J", "B\u2028\x9b"}


def test_a_file_name_with_control_characters_is_shown_escaped(gateway: Gateway, tmp_path: Path) -> None:
    """The summary and the rejection of an ingested file name it without letting it reach the terminal raw."""
    good = tmp_path / "in\x1b[31mred.csv"
    good.write_text("sku,quantity\nA,1\n", encoding="utf-8")
    bad = tmp_path / "bad\rfile.csv"
    bad.write_text("sku,quantity\nA ,1\n", encoding="utf-8")
    applied = gateway("ingest", "--partner", "p", "--kind", "stock", str(good))
    assert "in\\x1b[31mred.csv" in applied.output
    assert not RAW_CONTROL.search(applied.output)
    rejected = gateway("ingest", "--partner", "p", "--kind", "stock", str(bad), expect=1)
    assert "line 2, column sku: has leading or trailing whitespace" in rejected.output
    assert "bad\\x0dfile.csv" in rejected.output
    assert not RAW_CONTROL.search(rejected.output)


def test_a_usage_error_shows_what_was_typed_escaped(gateway: Gateway) -> None:
    """An extra argument is echoed by click as typed: here it is escaped like everything else."""
    done = gateway("stock", "set", "--partner", "p", "--sku", "A", "--quantity", "1", "x\x1b[2J", expect=2)
    assert "Got unexpected extra argument (x\\x1b[2J)" in done.output
    assert not RAW_CONTROL.search(done.output)
