"""Settings: TOML validated by pydantic, every problem listed by key, secrets never inline."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import settings
from gateway.domain.modes import StockMode

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "g.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_configuration_is_valid() -> None:
    """config/example.toml, which documents every key, loads."""
    loaded = settings.load(ROOT / "config" / "example.toml", environ={})
    assert loaded.partner("acme").files.stock.columns.sku == "EAN"
    assert loaded.partner("shop").absent == "zero"


def test_defaults_apply_when_keys_are_left_out(tmp_path: Path) -> None:
    """pending_allocation true, UTC, absent keep, default columns, store under var/ beside the file."""
    loaded = settings.load(write(tmp_path, '[partners.p]\nstock_mode = "simple"\n'), environ={})
    partner = loaded.partner("p")
    assert (partner.stock_mode, partner.pending_allocation, partner.timezone, partner.absent) == (
        StockMode.SIMPLE,
        True,
        "UTC",
        "keep",
    )
    assert loaded.store.url == f"sqlite:///{(tmp_path / 'var' / 'gateway.db').resolve()}"
    assert partner.files.csv_options(settings.Kind.STOCK).columns == {
        "sku": "sku",
        "quantity": "quantity",
        "as_of": "as_of",
    }


def test_every_problem_is_listed_by_key(tmp_path: Path) -> None:
    """Several mistakes at once: all of them, each under its key."""
    path = write(
        tmp_path,
        '[store]\nurl = "sqlite:///x.db"\nurll = 1\n'
        '[partners.a]\nstock_mode = "fast"\npending_allocation = "maybe"\n'
        '[partners.b]\nstock_mode = "simple"\ntimezone = "Nowhere/Town"\n'
        '[partners.b.files.orders]\ndelimiter = "|"\nencoding = "klingon"\ncolumns = { sku = "EAN", colour = "c" }\n',
    )
    with pytest.raises(settings.ConfigError) as error:
        settings.load(path, environ={})
    keys = [problem.split(":")[0] for problem in error.value.problems]
    assert keys == [
        "store.urll",
        "partners.a.stock_mode",
        "partners.a.pending_allocation",
        "partners.b.timezone",
        "partners.b.files.orders.delimiter",
        "partners.b.files.orders.encoding",
        "partners.b.files.orders.columns.colour",
    ]


def test_a_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    """A syntax error names the file."""
    with pytest.raises(settings.ConfigError, match="not valid TOML"):
        settings.load(write(tmp_path, "[partners\n"), environ={})


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    """No such file: one clear problem."""
    with pytest.raises(settings.ConfigError, match="no such configuration file"):
        settings.load(tmp_path / "absent.toml", environ={})


def test_no_config_at_all_names_both_ways_to_give_one() -> None:
    """Neither --config nor GATEWAY_CONFIG."""
    with pytest.raises(settings.ConfigError, match="--config PATH or set GATEWAY_CONFIG"):
        settings.config_path(None, {})


def test_gateway_config_names_the_file(tmp_path: Path) -> None:
    """The environment is the fallback for --config."""
    assert settings.config_path(None, {"GATEWAY_CONFIG": str(tmp_path / "g.toml")}) == tmp_path / "g.toml"
    assert settings.config_path("other.toml", {"GATEWAY_CONFIG": "ignored"}) == Path("other.toml")


def test_gateway_store_url_overrides_the_file(tmp_path: Path) -> None:
    """GATEWAY_STORE_URL wins over [store] url."""
    path = write(tmp_path, '[partners.p]\nstock_mode = "simple"\n')
    loaded = settings.load(path, environ={"GATEWAY_STORE_URL": "sqlite:////srv/gateway.db"})
    assert loaded.store.url == "sqlite:////srv/gateway.db"


def test_an_unknown_partner_names_the_known_ones(tmp_path: Path) -> None:
    """A typo in --partner is answered with the partners that exist."""
    loaded = settings.load(write(tmp_path, '[partners.acme]\nstock_mode = "simple"\n'), environ={})
    with pytest.raises(settings.ConfigError, match=r"known: acme"):
        loaded.partner("acne")


def test_partner_names_are_restricted(tmp_path: Path) -> None:
    """Names go into paths and logs: letters, digits, '-' and '_' only."""
    with pytest.raises(settings.ConfigError, match="partner name"):
        settings.load(write(tmp_path, '[partners."a b"]\nstock_mode = "simple"\n'), environ={})


def test_sources_get_default_names_and_paths_relative_to_the_config(tmp_path: Path) -> None:
    """A folder source's path and an SFTP source's files are read relative to the configuration's folder."""
    path = write(
        tmp_path,
        '[partners.p]\nstock_mode = "simple"\n'
        '[[partners.p.sources]]\ntype = "folder"\nkind = "stock"\npath = "drop"\n'
        '[[partners.p.sources]]\ntype = "sftp"\nkind = "orders"\nhost = "127.0.0.1"\nusername = "u"\n'
        'private_key_file = "keys/id"\nknown_hosts = "keys/known_hosts"\nremote_path = "/in"\n',
    )
    loaded = settings.load(path, environ={})
    folder, sftp = loaded.partner("p").sources
    assert (folder.name, sftp.name) == ("stock-folder-1", "orders-sftp-2")
    assert isinstance(folder, settings.FolderSource)
    assert folder.path == (tmp_path / "drop").resolve()
    assert isinstance(sftp, settings.SftpSource)
    assert sftp.known_hosts == (tmp_path / "keys" / "known_hosts").resolve()
    assert loaded.staging == (tmp_path / "var" / "staging").resolve()


def test_source_mistakes_are_listed_by_key(tmp_path: Path) -> None:
    """Two credentials, an unknown completion, an archive path, a missing known_hosts, a clashing name."""
    path = write(
        tmp_path,
        '[partners.p]\nstock_mode = "simple"\n'
        '[[partners.p.sources]]\ntype = "folder"\nkind = "stock"\npath = "d"\ncompletion = "guess"\narchive = "../x"\n'
        '[[partners.p.sources]]\ntype = "sftp"\nkind = "stock"\nhost = "h"\nusername = "u"\n'
        'password_env = "P"\nprivate_key_file = "k"\nremote_path = "/in"\n',
    )
    with pytest.raises(settings.ConfigError) as error:
        settings.load(path, environ={})
    text = "\n".join(error.value.problems)
    assert "partners.p.sources.0.folder.completion" in text
    assert "partners.p.sources.0.folder.archive" in text
    assert "partners.p.sources.1.sftp.known_hosts" in text


def test_two_sources_with_one_name_are_refused(tmp_path: Path) -> None:
    """Source names identify sources in the ledger and on the command line."""
    path = write(
        tmp_path,
        '[partners.p]\nstock_mode = "simple"\n'
        '[[partners.p.sources]]\nname = "in"\ntype = "folder"\nkind = "stock"\npath = "a"\n'
        '[[partners.p.sources]]\nname = "in"\ntype = "folder"\nkind = "orders"\npath = "b"\n',
    )
    with pytest.raises(settings.ConfigError, match="two sources are named 'in'"):
        settings.load(path, environ={})
