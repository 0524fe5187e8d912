"""Settings: TOML validated by pydantic, every problem listed by key, secrets never inline."""

from __future__ import annotations

import socket
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
        "available_from": "available_from",
    }


def test_max_line_bytes_defaults_to_one_mebibyte_and_reaches_every_kind_of_file(tmp_path: Path) -> None:
    """[partners.P.files] max_line_bytes: 1 MiB unless set; the CSV reader of every kind gets the partner's value."""
    loaded = settings.load(
        write(
            tmp_path,
            '[partners.p]\nstock_mode = "simple"\n'
            '[partners.q]\nstock_mode = "simple"\n[partners.q.files]\nmax_line_bytes = 4096\n'
            '[partners.q.files.stock]\ndelimiter = ";"\n',
        ),
        environ={},
    )
    for kind in settings.Kind:
        assert loaded.partner("p").files.csv_options(kind).max_line_bytes == 1_048_576
        assert loaded.partner("q").files.csv_options(kind).max_line_bytes == 4096
    assert loaded.partner("q").files.csv_options(settings.Kind.STOCK).delimiter == ";"


def test_a_max_line_bytes_too_small_for_any_header_is_refused(tmp_path: Path) -> None:
    """Below 256 bytes no real header fits: the configuration says so, by key."""
    path = write(tmp_path, '[partners.p]\nstock_mode = "simple"\n[partners.p.files]\nmax_line_bytes = 10\n')
    with pytest.raises(settings.ConfigError) as error:
        settings.load(path, environ={})
    [problem] = error.value.problems
    assert problem.startswith("partners.p.files.max_line_bytes")
    assert "greater than or equal to 256" in problem


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


# partner API, delivery and export settings

PARTNER = '[partners.p]\nstock_mode = "simple"\n'


def api_config(tmp_path: Path, keys: str, base_url: str = "https://partner.example/api") -> Path:
    """A partner with an [api] section holding base_url and these extra keys."""
    return write(tmp_path, PARTNER + f'[partners.p.api]\nbase_url = "{base_url}"\n{keys}')


def problems_of(path: Path) -> list[str]:
    with pytest.raises(settings.ConfigError) as error:
        settings.load(path, environ={})
    return error.value.problems


def test_api_defaults_and_relative_paths(tmp_path: Path) -> None:
    """An [api] section with only base_url: the reference adapter, both feeds, all kinds delivered, no auth;
    the trailing / of the URL is dropped and `failed` lies beside the configuration."""
    api = settings.load(api_config(tmp_path, "", "https://partner.example/api/"), environ={}).partner("p").api
    assert api is not None
    assert api.base_url == "https://partner.example/api"
    assert api.adapter == "gateway.transport.http:PartnerApi"
    assert api.feeds == ["stock", "acknowledgements"]
    assert api.deliver == ["ats", "channel_ats", "order_closed", "order_export"]
    assert (api.token_env, api.token_file, api.username, api.password_env, api.password_file) == (None,) * 5
    assert api.failed == (tmp_path / "var" / "api-failed").resolve()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://partner.example", "https://partner.example/v2/"])
def test_base_url_may_be_http_or_https(tmp_path: Path, url: str) -> None:
    """Both schemes are accepted."""
    api = settings.load(api_config(tmp_path, "", url), environ={}).partner("p").api
    assert api is not None
    assert api.base_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["ftp://partner.example", "partner.example", "https://", "http://", "", "file:///x", "https:///", "http://  "],
)
def test_base_url_must_be_http_or_https(tmp_path: Path, url: str) -> None:
    """Another scheme, no scheme or no host: refused under the key."""
    problems = problems_of(api_config(tmp_path, "", url))
    assert problems == [f"partners.p.api.base_url: {url!r}: an http:// or https:// URL with a host"]


def test_an_api_without_base_url_is_refused(tmp_path: Path) -> None:
    """base_url is required."""
    problems = problems_of(write(tmp_path, PARTNER + '[partners.p.api]\nfeeds = ["stock"]\n'))
    assert problems == ["partners.p.api.base_url: Field required"]


def test_an_adapter_named_module_colon_class_is_accepted(tmp_path: Path) -> None:
    """'package.module:ClassName' is kept as given (it is imported later, by the transport)."""
    api = settings.load(api_config(tmp_path, 'adapter = "partners.acme:AcmeApi"\n'), environ={}).partner("p").api
    assert api is not None
    assert api.adapter == "partners.acme:AcmeApi"


@pytest.mark.parametrize(
    "adapter", ["partners.acme.AcmeApi", ":AcmeApi", "partners.acme:", "partners.acme:1Api", "partners:Acme.Api"]
)
def test_an_adapter_must_be_module_colon_class(tmp_path: Path, adapter: str) -> None:
    """No colon, no module, no class or a class that is not an identifier: refused, saying the form."""
    problems = problems_of(api_config(tmp_path, f'adapter = "{adapter}"\n'))
    assert problems == [f"partners.p.api.adapter: {adapter!r}: name the adapter as 'package.module:ClassName'"]


@pytest.mark.parametrize(
    "keys",
    [
        'token_env = "TOKEN"\n',
        'token_file = "secrets/token"\n',
        'username = "u"\npassword_env = "PASSWORD"\n',
        'username = "u"\npassword_file = "secrets/password"\n',
    ],
)
def test_one_way_of_authenticating_is_accepted(tmp_path: Path, keys: str) -> None:
    """A bearer token by env or file, or basic auth with a password by env or file."""
    assert settings.load(api_config(tmp_path, keys), environ={}).partner("p").api is not None


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('token_env = "T"\ntoken_file = "t"\n', "give token_env or token_file, not both"),
        ('username = "u"\n', "basic auth needs username with password_env or password_file"),
        ('password_env = "P"\n', "basic auth needs username with password_env or password_file"),
        ('password_file = "p"\n', "basic auth needs username with password_env or password_file"),
        ('username = "u"\npassword_env = "P"\npassword_file = "p"\n', "give password_env or password_file, not both"),
        ('username = "u"\npassword_env = "P"\ntoken_env = "T"\n', "give a bearer token or basic auth, not both"),
        ('username = "u"\npassword_file = "p"\ntoken_file = "t"\n', "give a bearer token or basic auth, not both"),
    ],
)
def test_conflicting_or_incomplete_auth_is_refused(tmp_path: Path, keys: str, message: str) -> None:
    """Two tokens, a user without a password (or the reverse), or bearer and basic at once."""
    assert problems_of(api_config(tmp_path, keys)) == [f"partners.p.api: {message}"]


def test_api_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    """token_file, password_file, ca_file and failed are read relative to the configuration's folder;
    an absolute path is kept."""
    absolute = (tmp_path / "elsewhere" / "failed").resolve()
    path = write(
        tmp_path,
        PARTNER + '[partners.p.api]\nbase_url = "https://x.example"\ntoken_file = "secrets/token"\n'
        f'ca_file = "certs/ca.pem"\nfailed = "{absolute}"\n'
        '[partners.q]\nstock_mode = "simple"\n[partners.q.api]\nbase_url = "https://y.example"\n'
        'username = "u"\npassword_file = "../p"\nfailed = "api-failed"\n',
    )
    loaded = settings.load(path, environ={})
    p, q = loaded.partner("p").api, loaded.partner("q").api
    assert p is not None
    assert q is not None
    assert p.token_file == (tmp_path / "secrets" / "token").resolve()
    assert p.ca_file == (tmp_path / "certs" / "ca.pem").resolve()
    assert p.failed == absolute
    assert q.password_file == (tmp_path.parent / "p").resolve()
    assert q.failed == (tmp_path / "api-failed").resolve()


@pytest.mark.parametrize("key", ['tokn_env = "T"', 'url = "https://x"', 'headers = { a = "b" }'])
def test_unknown_api_keys_are_refused_by_name(tmp_path: Path, key: str) -> None:
    """A typo is not ignored: the problem names the key."""
    name = key.split(" ", maxsplit=1)[0]
    assert problems_of(api_config(tmp_path, key + "\n")) == [f"partners.p.api.{name}: Extra inputs are not permitted"]


def test_feeds_may_be_a_subset(tmp_path: Path) -> None:
    """Only the stock feed, or none at all."""
    api = settings.load(api_config(tmp_path, 'feeds = ["stock"]\ndeliver = ["order_export"]\n'), environ={})
    partner_api = api.partner("p").api
    assert partner_api is not None
    assert (partner_api.feeds, partner_api.deliver) == (["stock"], ["order_export"])


@pytest.mark.parametrize("feed", ["orders", "confirmations", "caps", "Stock"])
def test_feeds_are_limited_to_stock_and_acknowledgements(tmp_path: Path, feed: str) -> None:
    """The API serves two feeds; anything else is refused at its position in the list."""
    problems = problems_of(api_config(tmp_path, f'feeds = ["stock", "{feed}"]\n'))
    assert problems == ["partners.p.api.feeds.1: Input should be 'stock' or 'acknowledgements'"]


@pytest.mark.parametrize("kind", ["stock", "orders", "ATS", "order"])
def test_deliver_is_limited_to_the_four_message_kinds(tmp_path: Path, kind: str) -> None:
    """ats, channel_ats, order_closed and order_export only."""
    problems = problems_of(api_config(tmp_path, f'deliver = ["{kind}"]\n'))
    assert problems == [
        "partners.p.api.deliver.0: Input should be 'ats', 'channel_ats', 'order_closed' or 'order_export'"
    ]


def test_api_numbers_are_bounded(tmp_path: Path) -> None:
    """Timeouts above 0, page_limit from 1 to 100,000, at least one page per poll."""
    problems = problems_of(
        api_config(tmp_path, "connect_timeout = 0\nread_timeout = -1\npage_limit = 100001\nmax_pages_per_poll = 0\n")
    )
    assert [problem.split(":")[0] for problem in problems] == [
        "partners.p.api.connect_timeout",
        "partners.p.api.read_timeout",
        "partners.p.api.page_limit",
        "partners.p.api.max_pages_per_poll",
    ]


def test_delivery_defaults(tmp_path: Path) -> None:
    """Without a [delivery] section, the documented defaults apply."""
    delivery = settings.load(write(tmp_path, PARTNER), environ={}).partner("p").delivery
    assert (delivery.batch_size, delivery.retries, delivery.max_attempts, delivery.breaker_threshold) == (
        500,
        3,
        50,
        5,
    )
    assert delivery.schedule_points == 8


def test_delivery_values_are_bounded_and_unknown_keys_refused(tmp_path: Path) -> None:
    """Each value out of its range and each unknown key is listed under its key."""
    path = write(
        tmp_path,
        PARTNER + "[partners.p.delivery]\nbatch_size = 0\nretries = 21\nbackoff_initial = 0\n"
        "max_attempts = 0\nbreaker_pause = -1\nschedule_points = 101\nlease_secs = 5\n",
    )
    assert [problem.split(":")[0] for problem in problems_of(path)] == [
        "partners.p.delivery.batch_size",
        "partners.p.delivery.retries",
        "partners.p.delivery.backoff_initial",
        "partners.p.delivery.max_attempts",
        "partners.p.delivery.breaker_pause",
        "partners.p.delivery.schedule_points",
        "partners.p.delivery.lease_secs",
    ]


def test_a_folder_export_resolves_its_path(tmp_path: Path) -> None:
    """type = "folder" with a path relative to the configuration's folder and a delimiter."""
    path = write(tmp_path, PARTNER + '[partners.p.export]\ntype = "folder"\npath = "exports"\ndelimiter = ";"\n')
    export = settings.load(path, environ={}).partner("p").export
    assert isinstance(export, settings.FolderExport)
    assert export.path == (tmp_path / "exports").resolve()
    assert export.delimiter == ";"


def test_a_folder_export_needs_a_path(tmp_path: Path) -> None:
    """The folder's path is required; a delimiter other than , ; or tab is refused."""
    path = write(tmp_path, PARTNER + '[partners.p.export]\ntype = "folder"\ndelimiter = "|"\n')
    assert sorted(problem.split(":")[0] for problem in problems_of(path)) == [
        "partners.p.export.folder.delimiter",
        "partners.p.export.folder.path",
    ]


def test_an_sftp_export_resolves_its_files(tmp_path: Path) -> None:
    """type = "sftp": known_hosts and the key file are relative to the configuration's folder."""
    path = write(
        tmp_path,
        PARTNER + '[partners.p.export]\ntype = "sftp"\nhost = "127.0.0.1"\nusername = "u"\n'
        'private_key_file = "keys/id"\nknown_hosts = "keys/known_hosts"\nremote_path = "/out"\ndelimiter = "\\t"\n',
    )
    export = settings.load(path, environ={}).partner("p").export
    assert isinstance(export, settings.SftpExport)
    assert export.private_key_file == (tmp_path / "keys" / "id").resolve()
    assert export.known_hosts == (tmp_path / "keys" / "known_hosts").resolve()
    assert (export.port, export.remote_path, export.delimiter) == (22, "/out", "\t")


SFTP_EXPORT = '[partners.p.export]\ntype = "sftp"\nhost = "h"\nusername = "u"\nremote_path = "/out"\n'


@pytest.mark.parametrize(
    "credentials",
    ["", 'password_env = "P"\nprivate_key_file = "k"\n', 'password_env = "P"\npassword_file = "p"\n'],
)
def test_an_sftp_export_needs_exactly_one_credential(tmp_path: Path, credentials: str) -> None:
    """None, or two of password_env, password_file and private_key_file: refused."""
    path = write(tmp_path, PARTNER + SFTP_EXPORT + 'known_hosts = "kh"\n' + credentials)
    assert problems_of(path) == [
        "partners.p.export.sftp: give exactly one of password_env, password_file and private_key_file"
    ]


def test_an_sftp_export_needs_known_hosts(tmp_path: Path) -> None:
    """The server's key is always checked: known_hosts is required."""
    path = write(tmp_path, PARTNER + SFTP_EXPORT + 'password_env = "P"\n')
    assert problems_of(path) == ["partners.p.export.sftp.known_hosts: Field required"]


def test_an_sftp_export_refuses_folder_keys(tmp_path: Path) -> None:
    """The type decides which keys apply: `path` belongs to a folder export."""
    path = write(tmp_path, PARTNER + SFTP_EXPORT + 'password_env = "P"\nknown_hosts = "kh"\npath = "x"\n')
    assert problems_of(path) == ["partners.p.export.sftp.path: Extra inputs are not permitted"]


def test_an_export_needs_a_known_type(tmp_path: Path) -> None:
    """Without `type`, or with another one, the export is refused naming the choices."""
    missing = problems_of(write(tmp_path, PARTNER + '[partners.p.export]\npath = "x"\n'))
    assert len(missing) == 1
    assert missing[0].startswith("partners.p.export: ")
    assert "'type'" in missing[0]
    other = problems_of(write(tmp_path, PARTNER + '[partners.p.export]\ntype = "s3"\npath = "x"\n'))
    assert len(other) == 1
    assert other[0].startswith("partners.p.export: ")
    assert "'s3'" in other[0]
    assert "'folder', 'sftp'" in other[0]


def test_a_password_in_the_store_url_of_the_file_is_refused(tmp_path: Path) -> None:
    """The password of a PostgreSQL store is named (password_env or password_file), never written in the file."""
    path = write(
        tmp_path, '[store]\nurl = "postgresql+psycopg://gw:hunter2@db:5432/gw"\n[partners.p]\nstock_mode = "simple"\n'
    )
    problems = problems_of(path)
    assert problems == [
        "store.url: holds a password; name it with store.password_env or store.password_file "
        "(or give the whole URL in GATEWAY_STORE_URL)"
    ]
    assert "hunter2" not in " ".join(problems)
    as_parameter = write(
        tmp_path,
        '[store]\nurl = "postgresql+psycopg://gw@db/gw?password=hunter2"\n[partners.p]\nstock_mode = "simple"\n',
    )
    assert problems_of(as_parameter) == problems
    # the whole URL from the environment may carry it
    loaded = settings.load(path, environ={"GATEWAY_STORE_URL": "postgresql+psycopg://gw:pw@db:5432/gw"})
    assert loaded.store.url == "postgresql+psycopg://gw:pw@db:5432/gw"


def test_store_pool_and_password_settings(tmp_path: Path) -> None:
    """Pool sizes are read; the password file is relative to the configuration; one password source at most."""
    text = (
        '[store]\nurl = "postgresql+psycopg://gw@db:5432/gw"\npassword_file = "secrets/pw"\npool_size = 8\n'
        "max_overflow = 2\npool_timeout = 5\n"
        '[partners.p]\nstock_mode = "simple"\n'
    )
    loaded = settings.load(write(tmp_path, text), environ={})
    store = loaded.store
    assert (store.pool_size, store.max_overflow, store.pool_timeout) == (8, 2, 5.0)
    assert store.password_file == (tmp_path / "secrets" / "pw").resolve()
    both = text.replace("pool_size = 8", 'pool_size = 8\npassword_env = "PW"')
    assert problems_of(write(tmp_path, both)) == ["store: give at most one of password_env and password_file"]


def test_a_worker_is_named_after_its_host_and_sources_may_name_their_workers(tmp_path: Path) -> None:
    """[worker] name defaults to the host name; a source's `workers` lists who takes it (none: every worker)."""
    text = (
        '[partners.p]\nstock_mode = "simple"\n'
        '[[partners.p.sources]]\ntype = "folder"\nkind = "stock"\npath = "drop"\nworkers = ["machine-a"]\n'
    )
    loaded = settings.load(write(tmp_path, text), environ={})
    assert loaded.worker.name == socket.gethostname()
    assert loaded.partner("p").sources[0].workers == ["machine-a"]
    assert problems_of(write(tmp_path, text.replace('["machine-a"]', "[]")))[0].startswith(
        "partners.p.sources.0.folder.workers"
    )


def test_kept_copies_default_to_var_items_for_30_days_and_resolve_beside_the_file(tmp_path: Path) -> None:
    """[retention]: items_path relative to the configuration's folder, items_days 30 unless set; 0 keeps none."""
    loaded = settings.load(write(tmp_path, '[partners.p]\nstock_mode = "simple"\n'), environ={})
    assert (loaded.retention.items_path, loaded.retention.items_days) == ((tmp_path / "var" / "items").resolve(), 30)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = settings.load(write(elsewhere, '[partners.p]\nstock_mode = "simple"\n'), environ={})
    assert other.retention.items_path == (elsewhere / "var" / "items").resolve()  # each load its own
    assert loaded.retention.items_path == (tmp_path / "var" / "items").resolve()
    given = settings.load(write(tmp_path, '[retention]\nitems_path = "kept"\nitems_days = 0\n'), environ={})
    assert (given.retention.items_path, given.retention.items_days) == ((tmp_path / "kept").resolve(), 0)


def test_retention_keeps_each_kind_for_the_issues_defaults_and_dedupe_outlives_the_ledger(tmp_path: Path) -> None:
    """[retention] defaults: delivered messages 7 days, ledger 90, dedupe 365, files and pages 30, batches of 500;
    a dedupe_days shorter than ledger_days is refused under its key."""
    kept = settings.load(write(tmp_path, '[partners.p]\nstock_mode = "simple"\n'), environ={}).retention
    days = (kept.outbox_days, kept.ledger_days, kept.dedupe_days, kept.files_days, kept.pages_days, kept.items_days)
    assert (days, kept.batch_size) == ((7, 90, 365, 30, 30, 30), 500)
    assert problems_of(write(tmp_path, "[retention]\nledger_days = 400\n"))[0].startswith(
        "retention.dedupe_days: 365 is shorter than ledger_days (400)"
    )
    same = settings.load(write(tmp_path, "[retention]\nledger_days = 30\ndedupe_days = 30\n"), environ={})
    assert (same.retention.ledger_days, same.retention.dedupe_days) == (30, 30)


def test_retention_mistakes_are_listed_by_key(tmp_path: Path) -> None:
    """A negative number of days and an unknown key, each under its key."""
    with pytest.raises(settings.ConfigError) as error:
        settings.load(write(tmp_path, "[retention]\nitems_days = -1\nitem_days = 3\n"), environ={})
    assert [problem.split(":")[0] for problem in error.value.problems] == [
        "retention.items_days",
        "retention.item_days",
    ]
