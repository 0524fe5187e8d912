"""The log configuration and its redaction processor, through a real structlog configuration rendering JSON lines.

Every test writes to a StringIO with `logs.configure("json", stream, "debug")` and reads back what a log
collector would see. Secrets registered here are removed again after each test (the registry is process-wide).
"""

# ruff: noqa: S105, S106 - every "secret" here is a made-up value whose redaction is under test

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway import logs
from gateway.settings import ApiSettings
from gateway.transport.http import PartnerApi

R = logs.REDACTED


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Secrets registered by a test, and context it bound, do not outlive it."""
    saved = set(logs._known_secrets)
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    logs._known_secrets.clear()
    logs._known_secrets.update(saved)
    logs.configure("json", None, "error")


class Captured:
    """The JSON lines written by the configured loggers."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        logs.configure("json", self.stream, "debug")

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line]


@pytest.fixture
def out() -> Captured:
    return Captured()


def strings_in(value: Any) -> Iterator[str]:
    """Every string of a decoded JSON value: keys and values, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


# --- registered secrets ----------------------------------------------------------------------------------------

SECRET = "s3cr3t-V4lue-0123456789"


def test_a_registered_secret_is_redacted_under_any_key_and_at_any_depth(out: Captured) -> None:
    logs.register_secret(SECRET)
    log = logs.get("test")
    log.info("plain", detail=SECRET)
    log.info("embedded", detail=f"connect failed: user=acme pass={SECRET}; retrying")
    log.warning("nested", outer={"inner": {"deeper": [f"x{SECRET}y", {"k": SECRET}]}}, pair=("a", SECRET))
    log.error(f"in the event itself {SECRET}")
    log.debug("twice", detail=f"{SECRET} and again {SECRET}")
    text = out.text()
    assert SECRET not in text
    lines = out.lines()
    assert [line["event"] for line in lines] == ["plain", "embedded", "nested", f"in the event itself {R}", "twice"]
    assert lines[0]["detail"] == R
    assert lines[1]["detail"] == f"connect failed: user=acme pass={R}; retrying"
    assert lines[2]["outer"] == {"inner": {"deeper": [f"x{R}y", {"k": R}]}}
    assert lines[2]["pair"] == ["a", R]
    assert lines[4]["detail"] == f"{R} and again {R}"
    for line in lines:  # the rest of the line is intact
        assert {"timestamp", "level", "event"} <= line.keys()


def test_a_registered_secret_in_an_exception_logged_with_log_exception_is_redacted(out: Captured) -> None:
    logs.register_secret(SECRET)
    log = logs.get("test")
    try:
        try:
            raise ConnectionError(f"the server refused password {SECRET}")
        except ConnectionError as inner:
            raise RuntimeError(f"login as acme:{SECRET} failed") from inner
    except RuntimeError:
        log.exception("login_failed", partner="acme")
    assert SECRET not in out.text()
    [line] = out.lines()
    assert line["event"] == "login_failed"
    assert line["level"] == "error"
    assert line["partner"] == "acme"
    assert f"RuntimeError: login as acme:{R} failed" in line["exception"]
    assert f"ConnectionError: the server refused password {R}" in line["exception"]  # the chained cause too


def test_a_value_shorter_than_four_characters_is_not_registered(out: Captured) -> None:
    logs.register_secret("abc")
    logs.register_secret("")
    logs.register_secret("wxyz")  # four is enough
    logs.get("test").info("short", three="abc", four="wxyz", text="abc wxyz")
    [line] = out.lines()
    assert line["three"] == "abc"  # too short to redact without mangling ordinary text
    assert line["four"] == R
    assert line["text"] == f"abc {R}"
    assert "abc" not in logs._known_secrets
    assert "" not in logs._known_secrets


def test_a_registered_secret_inside_an_object_value_is_redacted(out: Captured) -> None:
    logs.register_secret(SECRET)
    logs.get("test").warning("failed", error=RuntimeError(f"login {SECRET}"), body=SECRET.encode(), seen={SECRET})
    assert SECRET not in out.text()


def test_scrub_removes_registered_secrets_and_credentials_from_a_text() -> None:
    logs.register_secret(SECRET)
    assert logs.scrub(f"401 for {SECRET}") == f"401 for {R}"
    assert logs.scrub("Authorization: Bearer abc.DEF-123_x") == f"Authorization: Bearer {R}"
    assert logs.scrub("nothing to hide") == "nothing to hide"


# --- secret-looking keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "sftp_password",
        "passphrase",
        "client_secret",
        "token",
        "access_token",
        "Authorization",
        "api_key",
        "api-key",
        "apikey",
        "credentials",
        "PASSWORD",
    ],
)
def test_a_secret_looking_key_is_redacted_whatever_its_value(out: Captured, key: str) -> None:
    logs.get("test").info("configured", **{key: "not-registered-anywhere", "partner": "acme"})
    [line] = out.lines()
    assert line[key] == R
    assert line["partner"] == "acme"
    assert "not-registered-anywhere" not in out.text()


def test_secret_looking_keys_are_redacted_in_nested_mappings(out: Captured) -> None:
    headers = {"Authorization": "Bearer abcdef", "Accept": "application/json", "X-Api-Key": "k-123456"}
    logs.get("test").info("request", request={"headers": headers, "body": {"password": "pw-123456", "sku": "A1"}})
    [line] = out.lines()
    assert line["request"] == {
        "headers": {"Authorization": R, "Accept": "application/json", "X-Api-Key": R},
        "body": {"password": R, "sku": "A1"},
    }


def test_an_empty_secret_looking_value_is_left_as_it_is(out: Captured) -> None:
    logs.get("test").info("configured", password="", token=None)
    [line] = out.lines()
    assert line["password"] == ""
    assert line["token"] is None


def test_the_event_is_never_replaced_even_when_it_names_a_secret(out: Captured) -> None:
    log = logs.get("test")
    log.info("token_refreshed")
    log.info("password_changed", partner="acme")
    assert [line["event"] for line in out.lines()] == ["token_refreshed", "password_changed"]


def test_a_key_that_names_an_environment_variable_is_redacted_too(out: Captured) -> None:
    """`token_env` holds the *name* of a variable, not a secret, but its key looks secret: it is redacted (the
    processor judges keys by their name only). The variable's name is no secret, so this over-redacts, safely."""
    logs.get("test").info("api_configured", token_env="ACME_TOKEN", password_file="/etc/acme.pw", base_url="http://x")
    [line] = out.lines()
    assert line["token_env"] == R
    assert line["password_file"] == R
    assert line["base_url"] == "http://x"


# --- credentials in free text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.J9x-y_z~+/=", f"Authorization: Bearer {R}"),
        ("header was 'bearer abcd1234' and failed", f"header was 'bearer {R}' and failed"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {R}"),
        ("BASIC   YWxhZGRpbjpvcGVu then", f"BASIC {R} then"),
        ("Bearer abc", "Bearer abc"),  # fewer than four characters: not a credential
    ],
)
def test_bearer_and_basic_credentials_in_free_text_are_redacted(out: Captured, text: str, expected: str) -> None:
    logs.get("test").warning("delivery_failed", error=text, details=[text], context={"text": text})
    [line] = out.lines()
    assert line["error"] == expected
    assert line["details"] == [expected]
    assert line["context"] == {"text": expected}


# --- run ids ------------------------------------------------------------------------------------------------------


def test_run_binds_a_run_id_to_every_line_of_the_block_and_no_line_after(out: Captured) -> None:
    log = logs.get("test")
    log.info("before")
    assert logs.current_run() is None
    with logs.run() as run_id:
        assert logs.current_run() == run_id
        log.info("file_picked")
        logs.get("other.module").info("file_applied", rows=3)
        log.info("file_archived", run_id_seen=logs.current_run())
    log.info("after")
    assert logs.current_run() is None
    lines = out.lines()
    assert len(run_id) == 16
    assert int(run_id, 16) >= 0  # hexadecimal
    assert [line.get("run_id") for line in lines] == [None, run_id, run_id, run_id, None]
    assert lines[3]["run_id_seen"] == run_id


def test_run_takes_a_given_id_and_each_run_gets_its_own(out: Captured) -> None:
    with logs.run("given-id") as chosen:
        logs.get("test").info("inside")
    with logs.run() as first, logs.run() as second:
        pass
    assert chosen == "given-id"
    assert first != second
    assert out.lines()[0]["run_id"] == "given-id"


def test_a_nested_run_keeps_the_outer_id_when_given_current_run(out: Captured) -> None:
    log = logs.get("test")
    with logs.run() as outer:
        with logs.run(logs.current_run()) as inner:
            log.info("nested_same")
        assert inner == outer
        with logs.run() as fresh:
            log.info("nested_fresh")
        log.info("outer_again")
    lines = out.lines()
    assert fresh != outer
    assert [line["run_id"] for line in lines] == [outer, fresh, outer]


def test_a_run_id_is_unbound_even_when_the_block_raises(out: Captured) -> None:
    with pytest.raises(ValueError, match="boom"), logs.run("doomed"):
        raise ValueError("boom")
    logs.get("test").info("after")
    assert logs.current_run() is None
    assert "run_id" not in out.lines()[0]


# --- a property: a registered secret never reaches a rendered line -----------------------------------------------

FIXED = ("event", "level", "timestamp", "detail", "context", "items", "exception", "partner", "acme", "info", "error")
printable_no_space = st.characters(categories=["L", "M", "N", "P", "S"])  # no controls, no separators


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    secret=st.text(printable_no_space, min_size=8, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_registered_secret_never_appears_in_a_rendered_line(secret: str, before: str, after: str) -> None:
    # "[redacted]" itself, or a secret straddling it, would be found again in the redacted text: not a leak
    assume("[" not in secret and "]" not in secret and secret != "redacted")
    assume(not any(secret in word for word in FIXED))
    stream = io.StringIO()
    logs.configure("json", stream, "debug")
    logs.register_secret(secret)
    try:
        text = before + secret + after
        log = logs.get("property")
        log.info("event_text " + text, partner="acme")
        log.warning("field", detail=text, context={"deep": [text, {"x": text}]}, items=(text,))
        try:
            raise RuntimeError(text)
        except RuntimeError:
            log.exception("failed", partner="acme")
    finally:
        logs._known_secrets.discard(secret)
    rendered = stream.getvalue().splitlines()
    assert len(rendered) == 3
    for raw in rendered:
        line = json.loads(raw)
        line.pop("timestamp")  # made by the processor chain: no place for a secret
        for found in strings_in(line):
            assert secret not in found, (secret, raw)
        if secret.isascii() and '"' not in secret and "\\" not in secret:
            assert secret not in raw  # nothing escaped: the raw line can be read as it is


# --- end to end: a partner API's token ---------------------------------------------------------------------------


def test_the_token_read_by_a_partner_api_is_redacted_from_logged_errors(out: Captured) -> None:
    token = "tok_live_9f8e7d6c5b4a"
    api = PartnerApi(
        "acme",
        ApiSettings(base_url="http://127.0.0.1:9/api", token_env="ACME_API_TOKEN"),
        environ={"ACME_API_TOKEN": f"  {token}\n"},  # as written by a careless shell: trimmed, then used
    )
    try:
        assert api.session.headers["Authorization"] == f"Bearer {token}"
        log = logs.get("gateway.service.publish")
        log.warning(
            "delivery_failed",
            partner="acme",
            error=f"HTTP 401: the partner echoed our request: GET /api/stock?key={token} ({token[:4]}...)",
            body={"echo": {"query": f"key={token}"}, "hint": [token]},
        )
        log.warning("delivery_request", partner="acme", headers=dict(api.session.headers))
    finally:
        api.close()
    assert token not in out.text()
    first, second = out.lines()
    assert first["error"] == f"HTTP 401: the partner echoed our request: GET /api/stock?key={R} (tok_...)"
    assert first["body"] == {"echo": {"query": f"key={R}"}, "hint": [R]}
    assert second["headers"]["Authorization"] == R
    assert second["headers"]["Accept"] == "application/json"
