"""The deployment files (deploy/systemd/gateway.service, deploy/compose.yaml), checked as systemd and Compose read them.

The unit goes through the real `systemd-analyze verify` (Debian's `systemd`, which `make test` installs when
missing); its stop timeout is compared with the worker's default `shutdown_grace` read from the code, so changing
one without the other fails here. No Docker engine runs here: the compose file is parsed with PyYAML, each
worker's mounted configuration is loaded by the gateway's own loader, and its command is parsed by the real CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import settings
from gateway.settings.store import holds_password
from tests.e2e.test_demo_and_image import makefile_rule
from tests.support.worker import environment

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "gateway.service"
COMPOSE = REPO / "deploy" / "compose.yaml"
DOCS = REPO / "docs" / "deployment.md"
README = REPO / "README.md"
SYSTEMD_ANALYZE = "systemd-analyze"
SHUTDOWN_GRACE = float(settings.WorkerSettings.model_fields["shutdown_grace"].default)
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|PASSPHRASE", re.IGNORECASE)


# --- the systemd unit --------------------------------------------------------------------------------------------


def unit_entries(text: str) -> dict[str, list[tuple[str, str]]]:
    """The unit's sections, each as its (key, value) lines in order (a key may repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"a line outside any section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def service() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in unit_entries(UNIT.read_text(encoding="utf-8"))["Service"]:
        values.setdefault(key, []).append(value)
    return values


def seconds(value: str) -> float:
    """A systemd or Compose time span: 45, 45s, 1min 30s, 1m30s."""
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip())
    assert parts, value
    for number, unit in parts:
        assert unit in units, f"unknown time unit in {value!r}"
        total += float(number) * units[unit]
    return total


def systemd_analyze() -> str:
    found = shutil.which(SYSTEMD_ANALYZE)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: CI verifies the unit, it never skips it (Debian's `systemd`)")
        pytest.skip("systemd-analyze is missing (make test installs Debian's `systemd`)")
    return found


def verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on a copy whose ExecStart names this checkout's installed `gateway` (verify
    refuses a unit whose executable does not exist); everything else is the file as shipped."""
    gateway = Path(sys.executable).parent / "gateway"
    assert gateway.is_file(), f"no installed gateway script beside {sys.executable}"
    text, count = re.subn(r"(?m)^ExecStart=\S+", f"ExecStart={gateway}", unit_text)
    assert count == 1
    copy = tmp_path / "gateway.service"
    copy.write_text(text, encoding="utf-8")
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


def test_systemd_analyze_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    done = verify(UNIT.read_text(encoding="utf-8"), tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert not [line for line in lines if "gateway.service" in line], lines


def test_systemd_analyze_does_catch_a_broken_copy(tmp_path: Path) -> None:
    """The check above can fail: the same copy with a misspelt key and a bad signal is reported."""
    broken = UNIT.read_text(encoding="utf-8").replace("KillSignal=SIGTERM", "KillSignal=SIGBOGUS\nProtectSystm=strict")
    done = verify(broken, tmp_path)
    output = done.stdout + done.stderr
    assert "gateway.service" in output, output
    assert "SIGBOGUS" in output or "KillSignal" in output, output
    assert "ProtectSystm" in output, output


def test_the_unit_stops_with_sigterm_and_waits_longer_than_the_worker_s_shutdown_grace() -> None:
    values = service()
    assert values["KillSignal"] == ["SIGTERM"]
    (timeout,) = values["TimeoutStopSec"]
    assert seconds(timeout) > SHUTDOWN_GRACE, (timeout, SHUTDOWN_GRACE)
    assert values["Restart"] == ["on-failure"]


def test_the_unit_runs_gateway_run_as_its_own_user_on_the_configured_file() -> None:
    values = service()
    assert values["User"] == ["gateway"]
    assert values["Group"] == ["gateway"]
    assert values.get("DynamicUser", ["no"]) == ["no"]
    (exec_start,) = values["ExecStart"]
    argv = exec_start.split()
    assert Path(argv[0]).is_absolute()
    assert Path(argv[0]).name == "gateway"
    assert argv[-1] == "run"
    config = argv[argv.index("--config") + 1]
    assert f"GATEWAY_CONFIG={config}" in values["Environment"]
    # secrets come from an environment file outside the configuration, never from an Environment= value
    assert values["EnvironmentFile"], "no EnvironmentFile= for the secrets"
    for assignment in values["Environment"]:
        for pair in assignment.split():
            name = pair.partition("=")[0]
            assert not SECRET_WORDS.search(name), f"a secret written in the unit: {pair}"


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
}


@pytest.mark.parametrize(("key", "expected"), sorted(HARDENING.items()))
def test_the_unit_is_hardened(key: str, expected: str) -> None:
    assert service().get(key) == [expected], key


def test_the_unit_lets_the_worker_write_its_store_and_drop_folders_only() -> None:
    values = service()
    (paths,) = values["ReadWritePaths"]
    writable = paths.split()
    assert all(Path(path).is_absolute() for path in writable), writable
    (state,) = values["StateDirectory"]
    assert f"/var/lib/{state}" in writable  # the SQLite store's folder (its -wal file beside it), staging
    assert values["WorkingDirectory"] == [f"/var/lib/{state}"]
    assert len(writable) >= 2, "the drop folders need a writable path of their own"


def test_make_test_installs_systemd_analyze_when_it_is_missing() -> None:
    for target in ("test", "e2e"):
        prerequisites, _ = makefile_rule(target)
        assert "$(SYSTEMD_ANALYZE)" in prerequisites, target
    _, recipe = makefile_rule("$(SYSTEMD_ANALYZE)")
    assert any("apt-get install" in line and line.split()[-1] == "systemd" for line in recipe), recipe
    assert "SYSTEMD_ANALYZE := /usr/bin/systemd-analyze" in (REPO / "Makefile").read_text(encoding="utf-8")


# --- the compose file --------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def workers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run `gateway ... run`: entrypoint and command put together, as Compose does."""
    found = {}
    for name, service_spec in spec["services"].items():
        argv = [*service_spec.get("entrypoint", []), *service_spec.get("command", [])]
        if argv[:1] == ["gateway"] and argv[-1:] == ["run"]:
            found[name] = service_spec
    return found


def mounted_config(worker: dict[str, Any]) -> Path:
    """The host file a worker mounts as the configuration its command names."""
    argv = [*worker["entrypoint"], *worker["command"]]
    inside = argv[argv.index("--config") + 1]
    assert worker["environment"]["GATEWAY_CONFIG"] == inside
    for volume in worker["volumes"]:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == inside:
            return (COMPOSE.parent / source).resolve()
    raise AssertionError(f"nothing mounted at {inside}")


def worker_settings(worker: dict[str, Any]) -> settings.Settings:
    return settings.load(mounted_config(worker), environ={})


def secret_mounts(spec: dict[str, Any], service_spec: dict[str, Any]) -> dict[str, Path]:
    """/run/secrets/NAME for each secret the service takes, each read from a file (never a value in the YAML)."""
    mounts = {}
    for name in service_spec.get("secrets", []):
        declared = spec["secrets"][name]
        assert set(declared) == {"file"}, f"secret {name} is not read from a file: {declared}"
        mounts[f"/run/secrets/{name}"] = (COMPOSE.parent / declared["file"]).resolve()
    return mounts


def test_compose_runs_two_workers_and_postgresql() -> None:
    spec = compose()
    found = workers(spec)
    assert len(found) == 2, sorted(spec["services"])
    postgres = spec["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    for name, worker in found.items():
        assert "postgres" in worker["depends_on"], name
        assert worker["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_each_worker_s_command_parses_with_the_real_cli() -> None:
    """`gateway --config FILE run --help` through the installed CLI: --config is a global option, run a command."""
    for name, worker in workers(compose()).items():
        argv = [*worker["entrypoint"], *worker["command"]][1:]
        argv[argv.index("--config") + 1] = str(mounted_config(worker))
        done = subprocess.run(
            [sys.executable, "-m", "gateway", *argv, "--help"],
            capture_output=True,
            text=True,
            env=environment(),
            cwd=REPO,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (name, done.stderr)
        assert done.stdout.startswith("Usage: gateway run [OPTIONS]"), (name, done.stdout)


def test_each_worker_s_configuration_loads_and_shares_one_postgresql_store() -> None:
    spec = compose()
    postgres_env = spec["services"]["postgres"]["environment"]
    found = workers(spec)
    urls = set()
    for name, worker in found.items():
        loaded = worker_settings(worker)
        url = loaded.store.url
        assert url.startswith("postgresql+psycopg://"), (name, url)
        assert not holds_password(url), (name, url)
        assert f"://{postgres_env['POSTGRES_USER']}@postgres:5432/{postgres_env['POSTGRES_DB']}" in url, url
        urls.add(url)
        # the password comes from the same secret file PostgreSQL is given
        assert loaded.store.password_file is not None, name
        mounts = secret_mounts(spec, worker)
        assert str(loaded.store.password_file) in mounts, (name, loaded.store.password_file)
        assert postgres_env["POSTGRES_PASSWORD_FILE"] == str(loaded.store.password_file)
        assert str(loaded.store.password_file) in secret_mounts(spec, spec["services"]["postgres"])
    assert len(urls) == 1, urls


def test_the_workers_have_their_own_names_and_health_ports_on_the_host() -> None:
    names, host_ports = set(), set()
    for service_name, worker in workers(compose()).items():
        loaded = worker_settings(worker)
        assert loaded.worker.name == service_name  # set in the file: a container's host name changes
        names.add(loaded.worker.name)
        assert loaded.worker.health_host == "0.0.0.0"  # noqa: S104 - reached through the published port
        published = [str(port).rsplit(":", 2) for port in worker["ports"]]
        inside = {int(port[-1]) for port in published}
        assert loaded.worker.health_port in inside, (service_name, published)
        host_ports.update(int(port[-2]) for port in published)
        stop = seconds(worker["stop_grace_period"])
        assert worker["stop_signal"] == "SIGTERM"
        assert stop > loaded.worker.shutdown_grace, (service_name, stop)
        assert stop > SHUTDOWN_GRACE
    assert len(names) == 2
    assert len(host_ports) == 2, host_ports


def test_the_pool_sizes_follow_the_docs_table_for_two_workers() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    row = re.search(r"(?m)^\| 2 \| (\d+) \| (\d+) \| (\d+) \|$", docs)
    assert row is not None, "docs/deployment.md lost its pool table"
    for name, worker in workers(compose()).items():
        store = worker_settings(worker).store
        assert (store.pool_size, store.max_overflow) == (int(row[1]), int(row[2])), name


def test_the_settings_the_workers_use_are_the_ones_the_docs_name() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for key in ("`[store] url`", "password_env", "password_file", "`[store] pool_size`", "`[store] max_overflow`"):
        assert key in docs, key
    for key in ("`[worker] name`", "`[worker] health_port`", "postgresql+psycopg://", "`workers`"):
        assert key in docs, key
    for name, worker in workers(compose()).items():
        text = mounted_config(worker).read_text(encoding="utf-8")
        for key in ("password_file", "pool_size", "max_overflow", "health_port", "name", "workers"):
            assert re.search(rf"(?m)^{key} = ", text), (name, key)
        loaded = worker_settings(worker)
        for partner in loaded.partners.values():
            for source in partner.sources:
                if isinstance(source, settings.FolderSource):
                    # both workers mount the drop volume, so both are named and take turns on the folder
                    assert set(source.workers or ()) == set(workers(compose())), (name, source)


def test_no_secret_value_is_written_in_the_compose_file_or_the_configurations() -> None:
    spec = compose()
    for name, service_spec in spec["services"].items():
        env = service_spec.get("environment", {})
        pairs = env.items() if isinstance(env, dict) else (item.partition("=")[::2] for item in env)
        for key, value in pairs:
            if SECRET_WORDS.search(key):
                reference = re.fullmatch(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}", str(value)) is not None
                assert key.endswith("_FILE") or reference, f"{name}: {key} holds a value"
                if key.endswith("_FILE"):
                    assert str(value).startswith("/run/secrets/"), (name, key, value)
    for worker in workers(spec).values():
        text = mounted_config(worker).read_text(encoding="utf-8")
        assert not re.search(r"(?mi)^\s*(password|token|secret)\s*=", text), mounted_config(worker)
    for declared in spec["secrets"].values():
        # the secret files are made on the machine that runs compose, never committed
        path = (COMPOSE.parent / declared["file"]).resolve()
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(path)], cwd=REPO, capture_output=True, timeout=30, check=False
        )
        assert ignored.returncode == 0, f"{path} is not ignored by git"


# --- where they are documented -----------------------------------------------------------------------------------


@pytest.mark.parametrize("document", [DOCS, README], ids=["docs", "readme"])
def test_the_docs_name_both_files(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "deploy/systemd/gateway.service" in text
    assert "deploy/compose.yaml" in text
    if document == DOCS:
        assert "systemctl enable --now" in text
        assert "docker compose" in text
