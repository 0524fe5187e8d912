"""The demo (`make run` on config/demo.toml) and the Docker image's files, checked as a newcomer and Docker use them.

No Docker engine runs here: the image is checked through its Dockerfile (base, user, volumes, healthcheck,
entrypoint), the configuration it copies, and its entrypoint and healthcheck commands run as processes.
Nothing waits a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gateway import settings
from tests.conftest import FIXTURES
from tests.support.worker import WorkerProcess, environment, wait_until

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.toml"
DOCKER_CONFIG = REPO / "config" / "docker.toml"
GATEWAY = [sys.executable, "-m", "gateway"]
MODES = {"simple-shop": "simple", "advanced-brand": "advanced", "timed-farm": "time_based"}
EXPORT_KINDS = {"ats", "channel_ats", "order_closed", "order_export"}


def gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATEWAY, *args], capture_output=True, text=True, env=environment(env), cwd=REPO, timeout=60, check=False
    )


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.reader(stream))


# --- (a) the demo configuration ----------------------------------------------------------------------------------


def test_the_demo_configuration_passes_check_config() -> None:
    done = gateway("--config", str(DEMO), "check-config")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("configuration is valid: store sqlite:///")
    assert "advanced-brand (advanced), simple-shop (simple), timed-farm (time_based)" in done.stdout


def test_the_demo_names_one_partner_per_stock_mode_with_drop_folders_and_an_export() -> None:
    raw = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    assert raw["store"]["url"] == "sqlite:///../var/gateway.db"
    assert {name: p["stock_mode"] for name, p in raw["partners"].items()} == MODES
    loaded = settings.load(DEMO, environ={})  # paths resolved against config/
    var = REPO / "var"
    assert loaded.store.url == f"sqlite:///{var / 'gateway.db'}"
    for name, partner in loaded.partners.items():
        assert partner.sources, name
        kinds = set()
        for source in partner.sources:
            assert isinstance(source, settings.FolderSource), (name, source)
            assert source.path == var / "drop" / name / source.kind.value, (name, source.path)
            kinds.add(source.kind.value)
        assert {"stock", "orders", "confirmations", "acknowledgements"} <= kinds, name
        assert partner.export is not None, name
        assert partner.export.path == var / "outbound" / name
        assert set(partner.export.kinds) == EXPORT_KINDS
        assert len(partner.export.kinds) == 4
    assert "caps" in {s.kind.value for s in loaded.partners["advanced-brand"].sources}


# --- (b) the demo worker, for real -------------------------------------------------------------------------------


def demo_copy(folder: Path) -> tuple[Path, Path]:
    """config/demo.toml in `folder`/config with its var/ under `folder`/var and a free health port."""
    var = folder / "var"
    text = DEMO.read_text(encoding="utf-8")
    assert text.count("../var") >= 10
    text = text.replace("../var", var.as_posix())
    text, replaced = re.subn(r"(?m)^health_port\s*=.*$", "health_port = 0", text)
    assert replaced == 1
    text, replaced = re.subn(r"(?m)^port\s*=\s*8082$", "port = 0", text)
    assert replaced == 1
    config = folder / "config" / "demo.toml"
    config.parent.mkdir(parents=True)
    config.write_text(text, encoding="utf-8")
    var.mkdir(parents=True, exist_ok=True)
    (var / "demo-api.token").write_text("demo-token-for-the-tests-0123456789\n", encoding="utf-8")  # as make run does
    return config, var


def outbound(var: Path, partner: str, prefix: str) -> list[Path]:
    return sorted((var / "outbound" / partner).glob(f"{prefix}-{partner}-*.csv"))


def wait_files(var: Path, partner: str, prefix: str, count: int, worker: WorkerProcess) -> list[Path]:
    """The `count` files of this prefix in the partner's outbound folder, oldest first, once they are there."""
    return wait_until(
        lambda: files if len(files := outbound(var, partner, prefix)) >= count else None,
        15,
        lambda: f"{count} {prefix}-{partner}-*.csv in {var / 'outbound' / partner}\n{worker.tail()}",
    )


def wait_closed(var: Path, partner: str, orders: set[str], worker: WorkerProcess) -> None:
    """Wait until the partner's closed-order files (all of them together) name exactly `orders`."""

    def closed() -> bool:
        return {row[0] for path in outbound(var, partner, "closed") for row in read_csv(path)[1:]} == orders

    wait_until(closed, 15, lambda: f"{sorted(orders)} closed for {partner}\n{worker.tail()}")


def stock_fixture() -> dict[str, tuple[str, str]]:
    """sku -> (quantity, as_of) of fixtures/stock/good.csv."""
    header, *rows = read_csv(FIXTURES / "stock" / "good.csv")
    assert header == ["sku", "quantity", "as_of"]
    return {sku: (quantity, as_of) for sku, quantity, as_of in rows}


def ats_rows(path: Path) -> dict[str, tuple[str, str]]:
    """sku -> (ats, as_of) of an ATS file, whose header and computed_at are checked."""
    header, *rows = read_csv(path)
    assert header == ["sku", "ats", "as_of", "computed_at"], path
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", row[3]), row
    return {sku: (ats, as_of) for sku, ats, as_of, _ in rows}


def test_the_demo_worker_takes_dropped_fixtures_and_writes_what_each_partner_is_owed(tmp_path: Path) -> None:
    config, var = demo_copy(tmp_path)
    worker = WorkerProcess(config).start()
    try:
        started = worker.events("worker_started")[0]
        assert started["partners"] == sorted(MODES)
        assert worker.get("/healthz")[0] == 200
        status, ready = worker.readyz()
        assert status == 200, ready
        watched = settings.load(config, environ={}).partners
        assert len(ready["sources"]) == sum(len(p.sources) for p in watched.values())  # every drop folder
        assert not [s for s in ready["sources"] if s["stale"]]

        # the platform API runs inside the worker, on the token make run writes
        token = (var / "demo-api.token").read_text(encoding="utf-8").strip()
        api = f"http://127.0.0.1:{started['api_port']}/v1/partners/simple-shop/ats"
        request = urllib.request.Request(api, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a loopback http URL
            assert (answer.status, json.loads(answer.read())) == (200, [])
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(api, timeout=10)
        refused.value.close()
        assert refused.value.code == 401

        # a stock snapshot, as a newcomer copies it (completion "stable": taken once it holds still)
        for partner in MODES:
            shutil.copy(FIXTURES / "stock" / "good.csv", var / "drop" / partner / "stock" / "good.csv")
        expected = stock_fixture()  # on a fresh store each SKU's ATS is its quantity
        assert expected == {
            "3700000000011": ("10", "2019-06-25T12:00:00Z"),
            "3700000000028": ("4", "2019-06-25T12:00:00Z"),
            "3700000000035": ("0", "2019-06-25T12:00:00Z"),
        }
        firsts = {}
        for partner in MODES:
            [firsts[partner]] = wait_files(var, partner, "ats", 1, worker)
            assert ats_rows(firsts[partner]) == expected, partner
            assert (var / "drop" / partner / "stock" / "archive" / "good.csv").is_file()
            assert not (var / "drop" / partner / "stock" / "good.csv").exists()
        applied = worker.wait_log("file_applied", partner="simple-shop", kind="stock")
        assert applied["rows_applied"] == 3
        archived = worker.wait_log("file_archived", partner="simple-shop", file="good.csv")
        assert archived["run_id"] == applied["run_id"]
        kept = var / "items" / "simple-shop" / str(applied["ledger_id"])  # what `ledger reapply` would apply again
        assert kept.read_bytes() == (FIXTURES / "stock" / "good.csv").read_bytes()

        # two orders: O-1001 pending (2 + 1), O-1002 placed straight into confirmed (3)
        for partner in MODES:
            shutil.copy(FIXTURES / "orders" / "good.csv", var / "drop" / partner / "orders" / "good.csv")
        for partner in MODES:
            # names start with the second they were written in: the new file is the one that was not there
            [second] = [f for f in wait_files(var, partner, "ats", 2, worker) if f != firsts[partner]]
            assert ats_rows(second) == {
                "3700000000011": ("5", "2019-06-25T12:00:00Z"),
                "3700000000028": ("3", "2019-06-25T12:00:00Z"),
            }, partner

        # O-1001 reaches invoicing: its order export
        for partner in MODES:
            shutil.copy(
                FIXTURES / "orders" / "good_status_update.csv", var / "drop" / partner / "orders" / "update.csv"
            )
        for partner in MODES:
            [export] = wait_files(var, partner, "orders", 1, worker)
            header, *rows = read_csv(export)
            assert header[:2] == ["order_id", "status"]
            assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
                ("O-1001", "invoicing", "3700000000011", "2"),
                ("O-1001", "invoicing", "3700000000028", "1"),
            ], partner

        # the brand closes both orders by status alone (fixtures/acknowledgements/good.csv): each closed order is
        # sent back; only in advanced mode does the close free units (simple took them from stock as the orders
        # left pending, time_based keeps them until the partner's confirmation is in a snapshot)
        for partner in MODES:
            shutil.copy(
                FIXTURES / "acknowledgements" / "good.csv", var / "drop" / partner / "acknowledgements" / "good.csv"
            )
        for partner in MODES:
            wait_closed(var, partner, {"O-1001", "O-1002"}, worker)
        [*_, third] = wait_files(var, "advanced-brand", "ats", 3, worker)
        assert ats_rows(third) == {
            "3700000000011": ("10", "2019-06-25T12:00:00Z"),
            "3700000000028": ("4", "2019-06-25T12:00:00Z"),
        }

        items = worker.metrics()
        assert items['gateway_items_total{kind="acknowledgements",outcome="applied",partner="simple-shop"}'] == 1
        assert items['gateway_items_total{kind="stock",outcome="applied",partner="simple-shop"}'] == 1
        assert items['gateway_items_total{kind="orders",outcome="applied",partner="simple-shop"}'] == 2
        assert worker.stop(timeout=15) == 0
        assert worker.events("worker_stopped")
        assert not [line for line in worker.lines() if line.get("level") in ("error", "critical")]
    finally:
        worker.kill()


def readme_demo_block() -> str:
    """The shell block of the README's "The demo in five minutes", as a newcomer pastes it."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## The demo in five minutes", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readmes_demo_block_works_pasted_at_once(tmp_path: Path) -> None:
    """The README's demo block, pasted whole into bash against a running demo worker, goes through step by step:
    each command finds what the one before made (no file looked for before it was taken), the ATS published, the
    export, the closes, the refusal's report, the status, the metrics and the API on the partner the block feeds.
    Only the ports (free ones here, 8081 and 8082 in the demo) and the command's path are replaced."""
    config, _var = demo_copy(tmp_path)
    (tmp_path / "fixtures").symlink_to(FIXTURES)
    worker = WorkerProcess(config).start()
    try:
        started = worker.events("worker_started")[0]
        block = readme_demo_block()
        for old, new in (
            (".venv/bin/gateway", f"{shlex.quote(sys.executable)} -m gateway"),
            ("127.0.0.1:8081", f"127.0.0.1:{worker.health_port}"),
            ("127.0.0.1:8082", f"127.0.0.1:{started['api_port']}"),
        ):
            assert old in block, old
            block = block.replace(old, new)
        pasted = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=environment({"PYTHONPATH": str(REPO)}),
            check=False,
        )
        assert pasted.returncode == 0, f"{pasted.stdout}\n{pasted.stderr}\n{worker.tail()}"
        out = pasted.stdout
        assert "var/drop/advanced-brand/stock/archive/good.csv" in out
        assert "3700000000011,10," in out  # the first ATS file: 10, 4, 0
        assert "3700000000035,0," in out
        assert re.search(r"var/outbound/advanced-brand/orders-advanced-brand-\S+\.csv", out)
        assert re.search(r"var/outbound/advanced-brand/closed-advanced-brand-\S+\.csv", out)
        assert '"line"' in out or "quantity" in out  # the refused file's report
        assert "gateway_items_total" in out
        assert '"sku":"3700000000011"' in out.replace(" ", "")  # the API answers for advanced-brand
    finally:
        worker.kill()


# --- (c) make run ------------------------------------------------------------------------------------------------


def makefile_rule(target: str) -> tuple[list[str], list[str]]:
    """The prerequisites and recipe lines of a rule of the Makefile."""
    lines = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"{target}:"):
            prerequisites = line.split(":", 1)[1].split()
            recipe = []
            for following in lines[index + 1 :]:
                if not following.startswith("\t"):
                    break
                recipe.append(following[1:].lstrip("@"))
            return prerequisites, recipe
    raise AssertionError(f"no rule {target} in the Makefile")


def test_make_run_installs_first_then_runs_the_worker_on_the_demo_configuration() -> None:
    prerequisites, recipe = makefile_rule("run")
    assert "$(STAMP)" in prerequisites  # the venv is made and the project installed first
    commands = [line for line in recipe if not line.startswith("echo")]
    assert len(commands) == 2, recipe  # the demo API token (made once), then the worker
    assert "var/demo-api.token" in commands[0]
    assert "secrets.token_urlsafe" in commands[0]
    commands = commands[1:]
    words = shlex.split(commands[0])
    assert words[0] == "$(BIN)/gateway"
    assert words[words.index("run") :] == ["run", "--config", "config/demo.toml"]
    assert recipe.index(commands[0]) == len(recipe) - 1  # after it says where to drop files
    said = "\n".join(recipe)
    for partner in MODES:
        assert partner in said
    assert "cp fixtures/stock/good.csv var/drop/simple-shop/stock/" in said

    stamp_prerequisites, stamp_recipe = makefile_rule("$(STAMP)")
    assert "pyproject.toml" in stamp_prerequisites
    assert any("-m venv $(VENV)" in line for line in stamp_recipe)
    assert any("pip install" in line and "-e" in line for line in stamp_recipe)
    assert stamp_recipe[-1] == "touch $(STAMP)"


def test_make_n_run_ends_with_the_worker_command() -> None:
    """What make would run (-n: print, run nothing), in order: any install steps, then the worker (run from
    inside `make test` too: the parent make's variables are left out)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if line and not line.startswith("echo")]
    assert commands[-1] == ".venv/bin/gateway --log-format console run --config config/demo.toml"


# --- (d) the Docker image ----------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    joined: list[str] = []
    pending = ""
    for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending
    parsed = []
    for line in joined:
        instruction, _, arguments = line.strip().partition(" ")
        parsed.append((instruction.upper(), arguments.strip()))
    return parsed


def instructions(name: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile() if instruction == name]


def healthcheck_command() -> list[str]:
    [healthcheck] = instructions("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    parsed = json.loads(command)
    assert isinstance(parsed, list)
    return [str(word) for word in parsed]


def test_the_dockerfile_builds_a_slim_non_root_image_with_volumes_a_healthcheck_and_the_worker() -> None:
    [base] = instructions("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    users = instructions("USER")
    assert users, "no USER: the worker would run as root"
    assert users[-1] not in ("root", "0", "0:0")
    run = " ".join(instructions("RUN"))
    assert "useradd" in run  # the user is made in the image
    assert users[-1] in run
    [volume] = instructions("VOLUME")
    assert set(json.loads(volume)) == {"/etc/gateway", "/var/lib/gateway"}
    command = healthcheck_command()
    assert command[0] == "python"
    assert "/healthz" in " ".join(command)
    [entrypoint] = instructions("ENTRYPOINT")
    assert json.loads(entrypoint) == ["gateway", "run"]
    assert 'gateway = "gateway.cli:main"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    # the worker, started without --config, reads the configuration the image copies
    copies = [arguments.split() for arguments in instructions("COPY")]
    assert ["config/docker.toml", "/etc/gateway/gateway.toml"] in copies
    for copied in copies:
        for source in copied[:-1]:
            assert (REPO / source).exists(), source
    env = " ".join(instructions("ENV"))
    assert "GATEWAY_CONFIG=/etc/gateway/gateway.toml" in env
    # the health port the healthcheck asks is the one the configuration listens on, on every interface
    worker = tomllib.loads(DOCKER_CONFIG.read_text(encoding="utf-8"))["worker"]
    assert f"127.0.0.1:{worker['health_port']}/healthz" in command[-1]
    assert worker["health_host"] in ("0.0.0.0", "127.0.0.1")  # noqa: S104 - what the image's config says
    assert str(worker["health_port"]) in instructions("EXPOSE")[0].split()


def test_the_image_configuration_passes_check_config_with_the_store_url_from_the_environment(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    done = gateway("--config", str(DOCKER_CONFIG), "check-config", env={"GATEWAY_STORE_URL": store})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"configuration is valid: store {store}; partners: example (advanced)")
    loaded = settings.load(DOCKER_CONFIG, environ={})
    for source in loaded.partners["example"].sources:  # everything the worker writes is on the volume
        assert isinstance(source, settings.FolderSource)
        assert source.path.is_relative_to("/var/lib/gateway")
    assert loaded.staging == Path("/var/lib/gateway/staging")
    assert loaded.retention.items_path == Path("/var/lib/gateway/items")  # the kept copies of applied items
    assert loaded.store.url == "sqlite:////var/lib/gateway/gateway.db"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_the_healthcheck_passes_against_the_entrypoint_worker_and_fails_without_it(tmp_path: Path) -> None:
    port = free_port()
    volume = tmp_path / "var-lib-gateway"
    text = DOCKER_CONFIG.read_text(encoding="utf-8").replace("/var/lib/gateway", volume.as_posix())
    text, replaced = re.subn(r"(?m)^health_port\s*=\s*8081\b", f"health_port = {port}", text)
    assert replaced == 1
    config = tmp_path / "etc-gateway" / "gateway.toml"
    config.parent.mkdir()
    config.write_text(text, encoding="utf-8")

    probe = healthcheck_command()
    probe = [sys.executable, *[word.replace(":8081/", f":{port}/") for word in probe[1:]]]

    def healthcheck() -> int:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode

    assert healthcheck() != 0  # nothing listens yet

    [entrypoint] = instructions("ENTRYPOINT")
    program, *args = json.loads(entrypoint)
    executable = Path(sys.executable).parent / program  # the console script pip installs beside python
    assert executable.is_file()
    stdout = tmp_path / "worker.stdout"
    with stdout.open("wb") as out:
        process = subprocess.Popen(
            [str(executable), *args],  # no --config: GATEWAY_CONFIG, as the image's ENV sets it
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment({"GATEWAY_CONFIG": str(config)}),
            cwd=tmp_path,
        )
    try:

        def started() -> dict[str, Any] | None:
            for raw in stdout.read_text(encoding="utf-8", errors="replace").splitlines():
                if raw.startswith("{") and (line := json.loads(raw)).get("event") == "worker_started":
                    return line
            assert process.poll() is None, stdout.read_text(encoding="utf-8", errors="replace")
            return None

        line = wait_until(started, 20, lambda: stdout.read_text(encoding="utf-8", errors="replace"))
        assert line["health_port"] == port
        assert line["config"] == str(config)
        assert healthcheck() == 0
        assert (volume / "gateway.db").is_file()  # the store on the volume
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        assert healthcheck() != 0  # gone again
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
