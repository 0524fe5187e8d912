"""The platform API is never served without a token: `gateway serve`, and `gateway run` with `[api] enabled`, refuse
to start (exit 2, naming `[[api.tokens]]`) rather than answer 401 to everything. Through click's CliRunner, in
process; the store of these configurations cannot be opened, so a command that went past the check would stop
at once on that instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway import cli
from tests.conftest import write_config

UNOPENABLE = "sqlite:////dev/null/gateway.db"  # /dev/null is not a folder
TOKEN_TOML = '\n[[api.tokens]]\nname = "checkout"\ntoken_env = "CHECKOUT_TOKEN"\npartners = ["acme"]\n'  # noqa: S105 - names a variable


def config(folder: Path, api: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = write_config(folder, {"acme": {"stock_mode": "simple"}}, UNOPENABLE)
    path.write_text(path.read_text(encoding="utf-8") + api, encoding="utf-8")
    return path


def gateway(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.cli, ["--config", str(path), *args], env={"CHECKOUT_TOKEN": "t" * 24})


def refused_for_want_of_tokens(result: Result) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "[[api.tokens]]" in result.stderr, result.stderr
    assert "configuration has problems" in result.stderr


@pytest.mark.parametrize("api", ["", "\n[api]\nport = 0\n", "\n[api]\nenabled = true\n"])
def test_gateway_serve_without_a_token_exits_2_naming_api_tokens(tmp_path: Path, api: str) -> None:
    """`gateway serve` with no [[api.tokens]] (no [api] at all, or one without tokens) refuses to start: exit 2."""
    refused_for_want_of_tokens(gateway(config(tmp_path, api), "serve", "--port", "0"))


def test_gateway_run_with_the_api_enabled_and_no_token_exits_2_naming_api_tokens(tmp_path: Path) -> None:
    """`gateway run` with [api] enabled and no [[api.tokens]] refuses to start: exit 2, and check-config says so."""
    path = config(tmp_path, "\n[api]\nenabled = true\nport = 0\n")
    refused_for_want_of_tokens(gateway(path, "run"))
    refused_for_want_of_tokens(gateway(path, "check-config"))


def test_without_the_api_enabled_no_token_is_needed_and_with_one_the_api_is_accepted(tmp_path: Path) -> None:
    """The check is about serving the API: a worker without it needs no token, and one token is enough."""
    assert gateway(config(tmp_path / "off", "\n[api]\nenabled = false\n"), "check-config").exit_code == 0
    assert gateway(config(tmp_path / "on", "\n[api]\nenabled = true\n" + TOKEN_TOML), "check-config").exit_code == 0


def test_a_tokens_scopes_are_api_or_console_and_another_is_refused_at_check_config(tmp_path: Path) -> None:
    """`scopes` takes "api" and "console" (the operator console); a scope of another name is a configuration
    problem naming the token's table (exit 2)."""
    console = TOKEN_TOML + 'scopes = ["api", "console"]\n'
    assert gateway(config(tmp_path / "ok", "\n[api]\nenabled = true\n" + console), "check-config").exit_code == 0
    bad = config(tmp_path / "bad", "\n[api]\nenabled = true\n" + TOKEN_TOML + 'scopes = ["admin"]\n')
    result = gateway(bad, "check-config")
    assert result.exit_code == 2, result.output
    assert "scopes" in result.stderr
