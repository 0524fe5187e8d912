"""A question to the command line starts fast because it imports only what it uses: the commands people ask most
never load the worker's libraries (SSH, HTTP, the web server, the scheduler, the file watcher, retries) nor
Alembic (a store at the head is told by its version table), nor, on SQLite, PostgreSQL's driver and dialect.
A behaviour test, not a timed one: bench/cli.py times them. The commands run in a fresh interpreter, as `gateway`
would, one after another."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import cli as in_process

ROOT = Path(__file__).resolve().parents[2]
WORKER = ("paramiko", "uvicorn", "fastapi", "requests", "apscheduler", "watchdog", "tenacity")
NEVER = (*WORKER, "alembic", "psycopg", "sqlalchemy.dialects.postgresql")  # and, on SQLite, no PostgreSQL

SCRIPT = """
import json, sys
from gateway.cli import main
commands, never = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for args in commands:
    sys.argv = ["gateway", *args]
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
print(json.dumps(sorted(name for name in never if name in sys.modules)))
"""


def test_the_questions_asked_most_import_no_worker_library_nor_alembic(tmp_path: Path) -> None:
    """--version, ats, ledger, outbox and order show, on the demo configuration's SQLite store: none of NEVER."""
    config = tmp_path / "config" / "demo.toml"
    config.parent.mkdir()
    shutil.copy(ROOT / "config" / "demo.toml", config)
    base = ["--config", str(config), "--log-level", "warning"]
    for args in (
        ["stock", "set", "--partner", "simple-shop", "--sku", "A1", "--quantity", "5"],
        ["order", "place", "--partner", "simple-shop", "--order-id", "O-1", "--line", "A1:2"],
    ):
        assert in_process.run([*base, *args]).returncode == 0
    commands = [
        ["--version"],
        [*base, "ats", "--partner", "simple-shop"],
        [*base, "ledger", "--partner", "simple-shop"],
        [*base, "outbox", "--partner", "simple-shop"],
        [*base, "order", "show", "--partner", "simple-shop", "--order-id", "O-1"],
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(commands), json.dumps(NEVER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "order O-1 of simple-shop" in done.stdout  # the commands did answer
    assert json.loads(done.stdout.splitlines()[-1]) == []
