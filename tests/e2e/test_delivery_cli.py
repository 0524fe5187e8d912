"""`gateway deliver` and `gateway outbox` as people and scripts use them: real processes against a real fake
partner API on 127.0.0.1, exit codes, what is printed, and a token that never shows in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway import bootstrap, settings
from gateway.store.port import OutboxRecord
from tests.conftest import write_config
from tests.support.partner import FakePartner, Status, running

GATEWAY = [sys.executable, "-m", "gateway"]
TOKEN_ENV = "STOCK_GATEWAY_TEST_PARTNER_TOKEN"  # noqa: S105 - the name of a variable
TOKEN = "tok-5f1c9e0a-never-printed"  # noqa: S105 - the fake partner's token, not a secret
# tiny backoffs and one attempt per pass: a failing batch ends the pass at once
DELIVERY = {"retries": 1, "backoff_initial": 0.01, "backoff_max": 0.05, "wait_in_pass_max": 1.0}


class Cli:
    """Runs `python -m gateway --config CONFIG ...`; every output is checked for the token."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = env

    def __call__(
        self, *args: str, expect: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        [done] = self.together(args, expect=[expect], env=env)
        return done

    def together(
        self, *commands: Sequence[str], expect: Sequence[int], env: dict[str, str] | None = None
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run these commands at the same time (each a process of its own); check each one's exit code."""
        started = [
            (
                command,
                subprocess.Popen(
                    [*GATEWAY, "--config", str(self.config), "--log-level", "debug", *command],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=self.env if env is None else env,
                ),
            )
            for command in commands
        ]
        finished = []
        for command, process in started:
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
            finished.append(subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr))
        for done, code in zip(finished, expect, strict=True):
            assert TOKEN not in done.stdout, done.args
            assert TOKEN not in done.stderr, done.args
            assert done.returncode == code, (done.args, done.returncode, done.stdout, done.stderr)
        return finished

    def app(self) -> bootstrap.App:
        """The gateway in-process on the same store, for setting up and looking without a process each time."""
        return bootstrap.build(settings.load(self.config, environ={}))

    def seed(self, **partners: dict[str, int]) -> None:
        """Set stock levels, partner -> {sku: quantity} (each queues an ATS message)."""
        app = self.app()
        try:
            for partner, levels in partners.items():
                for sku, quantity in levels.items():
                    app.commands.set_stock(partner, sku, quantity, None)
        finally:
            app.close()

    def outbox(self, partner: str, state: str | None = "pending") -> list[OutboxRecord]:
        app = self.app()
        try:
            with app.store.read() as tx:
                return tx.outbox.rows(tx.partners.id_of(partner), state=state)
        finally:
            app.close()


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != TOKEN_ENV}


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with running(token=TOKEN) as served:
        yield served


@pytest.fixture
def cli(tmp_path: Path, partner: FakePartner) -> Cli:
    config = write_config(
        tmp_path,
        {
            "p": {
                "stock_mode": "simple",
                "api": {"base_url": partner.url, "token_env": TOKEN_ENV, "connect_timeout": 2.0, "read_timeout": 5.0},
                "delivery": DELIVERY,
            },
            "q": {"stock_mode": "simple"},  # no API and no export: nothing has a route
        },
    )
    return Cli(config, base_env() | {TOKEN_ENV: TOKEN})


def test_deliver_sends_the_ats_and_says_how_much(cli: Cli, partner: FakePartner) -> None:
    cli.seed(p={"A1": 10, "B2": 0})

    done = cli("deliver", "--partner", "p")

    assert done.stdout.splitlines() == ["p: delivered 2 message(s) in 1 batch(es)"]
    assert partner.ats_view() == {"A1": 10, "B2": 0}
    [request] = partner.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.idempotency_key
    assert [m.state for m in cli.outbox("p", state=None)] == ["delivered", "delivered"]


def test_a_refused_batch_goes_to_dead_letter_is_listed_and_can_be_retried(cli: Cli, partner: FakePartner) -> None:
    cli.seed(p={"A1": 7})
    partner.script(Status(400, '{"error": "unknown sku A1 (refused-by-partner)"}'))

    done = cli("deliver", "--partner", "p", expect=1)

    assert "p: delivered 0 message(s) in 0 batch(es); 1 message(s) went to dead letter" in done.stderr
    assert partner.batches == []
    listing, as_json = cli.together(
        ("outbox", "--partner", "p", "--dead"), ("outbox", "--partner", "p", "--dead", "--json"), expect=[0, 0]
    )
    assert "ats           dead" in listing.stdout
    [row] = [line for line in listing.stdout.splitlines() if " A1 " in line]
    assert "dead after 1 attempt(s): HTTP 400" in row
    assert "refused-by-partner" in row  # the partner's answer says why

    body = json.loads(as_json.stdout)
    assert set(body) >= {"counts", "messages"}
    assert [(c["kind"], c["state"], c["count"]) for c in body["counts"]] == [("ats", "dead", 1)]
    [message] = body["messages"]
    assert set(message) >= {"id", "kind", "key", "value", "state", "attempts", "last_status", "last_error", "why"}
    assert (message["kind"], message["key"], message["value"], message["state"]) == ("ats", "A1", 7, "dead")
    assert (message["attempts"], message["last_status"]) == (1, 400)
    assert "refused-by-partner" in message["last_error"]
    assert message["why"].startswith("dead after 1 attempt(s): HTTP 400")
    assert "refused-by-partner" in message["why"]

    revived = cli("outbox", "retry", "--partner", "p", "--all-dead")
    assert "p: 1 message(s) queued again" in revived.stdout
    again = cli("deliver", "--partner", "p")

    assert "p: delivered 1 message(s) in 1 batch(es)" in again.stdout
    assert partner.ats_view() == {"A1": 7}
    assert [(m.id, m.state) for m in cli.outbox("p", state=None)] == [(message["id"], "delivered")]


def test_the_outbox_says_why_each_message_waits(cli: Cli, partner: FakePartner) -> None:
    cli.seed(p={"A1": 5}, q={"Z9": 3})
    partner.script(Status(503, '{"error": "maintenance"}', {"Retry-After": "3600"}))
    failed = cli("deliver", "--partner", "p", expect=1)
    assert "1 batch(es) failed and are due again later" in failed.stderr
    cli.seed(p={"B2": 4})  # queued after the pass: never attempted

    listed, unrouted = cli.together(("outbox", "--partner", "p"), ("outbox", "--partner", "q"), expect=[0, 0])

    [a1] = [line for line in listed.stdout.splitlines() if " A1 " in line]
    [b2] = [line for line in listed.stdout.splitlines() if " B2 " in line]
    assert "retry at 20" in a1
    assert "after 1 attempt(s): HTTP 503 from POST " in a1
    assert "HTTP 503" in a1
    assert b2.rstrip().endswith("due now")
    assert "ats           pending            2" in listed.stdout
    [z9] = [line for line in unrouted.stdout.splitlines() if " Z9 " in line]
    assert "no route" in z9
    assert [m.key for m in cli.outbox("q")] == ["Z9"]


def test_retry_needs_a_dead_id_or_all_dead(cli: Cli) -> None:
    unknown, bare = cli.together(
        ("outbox", "retry", "--partner", "p", "--id", "999999"), ("outbox", "retry", "--partner", "p"), expect=[1, 2]
    )

    assert "0 message(s) queued again" in unknown.stdout
    assert "some ids are not dead messages of this partner" in unknown.stderr
    assert "give --id N (repeatable) or --all-dead" in bare.stderr


def test_a_missing_token_variable_is_a_configuration_error_naming_it(cli: Cli, partner: FakePartner) -> None:
    cli.seed(p={"A1": 1})

    done = cli("deliver", "--partner", "p", expect=2, env=base_env())

    assert f"the environment variable {TOKEN_ENV} (the API token) is not set" in done.stderr
    assert partner.requests == []
    assert [m.state for m in cli.outbox("p")] == ["pending"]
