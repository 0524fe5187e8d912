"""The one reader of secrets: an environment variable or a file, whitespace around it dropped, never empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import logs
from gateway.secrets import SecretError, read_secret


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secrets registered by a test are forgotten after it (the registry is process-wide)."""
    saved = set(logs._known_secrets)
    yield
    logs._known_secrets.clear()
    logs._known_secrets.update(saved)


def test_nothing_named_reads_nothing() -> None:
    """Neither an environment variable nor a file: None, not an error (the secret is optional there)."""
    assert read_secret(None, None, "the API token", {}) is None


def test_a_secret_from_the_environment_or_a_file_loses_the_whitespace_around_it(tmp_path: Path) -> None:
    """A pasted space and a file's final line break are not part of the secret; inner spaces are."""
    secret = tmp_path / "token"
    secret.write_text("  s3cret value-1\r\n", encoding="utf-8")
    assert read_secret("TOKEN", None, "the API token", {"TOKEN": "\ts3cret value-1 \n"}) == "s3cret value-1"
    assert read_secret(None, secret, "the API token", {}) == "s3cret value-1"


def test_the_secret_read_is_registered_for_redaction() -> None:
    """Once read, the secret never reaches a log line."""
    read_secret("TOKEN", None, "the API token", {"TOKEN": "registered-s3cret"})
    assert logs.scrub("refused registered-s3cret") == f"refused {logs.REDACTED}"


def test_the_environment_variable_wins_over_the_file(tmp_path: Path) -> None:
    """Both named (settings refuse that, a caller may not): the environment variable is read."""
    assert read_secret("TOKEN", tmp_path / "absent", "the API token", {"TOKEN": "from-env"}) == "from-env"


def test_an_unset_variable_a_missing_file_and_an_empty_secret_say_where_they_were_looked_for(tmp_path: Path) -> None:
    """Each problem names the place and what was wanted, with a reason a caller can rephrase; never the secret."""
    with pytest.raises(SecretError, match=r"^the environment variable TOKEN \(the API token\) is not set$") as unset:
        read_secret("TOKEN", None, "the API token", {})
    assert unset.value.reason == "unset"
    with pytest.raises(SecretError, match=r"^cannot read the SFTP password from .*absent: No such file") as missing:
        read_secret(None, tmp_path / "absent", "the SFTP password", {})
    assert (missing.value.reason, "absent" in missing.value.detail) == ("unreadable", True)
    (tmp_path / "blank").write_text(" \n", encoding="utf-8")
    with pytest.raises(SecretError, match=r"^the store's password in .*blank is empty$") as empty:
        read_secret(None, tmp_path / "blank", "the store's password", {})
    assert empty.value.reason == "empty"


def test_a_file_that_is_not_utf_8_cannot_be_read(tmp_path: Path) -> None:
    """Bytes that are not UTF-8: the file cannot be read (no guess at its encoding)."""
    (tmp_path / "latin").write_bytes(b"caf\xe9-s3cret")
    with pytest.raises(SecretError, match=r"cannot read the API token from .*latin") as error:
        read_secret(None, tmp_path / "latin", "the API token", {})
    assert error.value.reason == "unreadable"


def test_a_callers_check_refuses_a_secret_in_its_own_words() -> None:
    """The check's phrase follows where the secret was read; the secret itself is not in the message."""

    def one_line(value: str) -> str | None:
        return "holds a line break" if "\n" in value else None

    with pytest.raises(SecretError, match=r"^the environment variable T \(the API token\) holds a line break$") as e:
        read_secret("T", None, "the API token", {"T": "two\nlines"}, check=one_line)
    assert (e.value.reason, "two" in str(e.value)) == ("refused", False)
    assert read_secret("T", None, "the API token", {"T": "one line"}, check=one_line) == "one line"
