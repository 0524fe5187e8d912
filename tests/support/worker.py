"""The worker (`gateway run`) as a real process, for end-to-end tests; and the `gateway` command beside it.

    worker = WorkerProcess(config, env).start()      # waits for `worker_started`, reads its health port
    worker.wait_log("file_archived", file="a.csv")   # a JSON log line of stdout, waited for with a deadline
    worker.get("/readyz")                            # (status, body) from its health endpoint
    worker.signal(signal.SIGTERM); worker.wait_exit(10)

Nothing waits a fixed time: every wait polls a condition until a deadline (`wait_until`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, Self, TypeVar

from tests.conftest import toml_value, write_config
from tests.support import sshd as sshd_support

GATEWAY = [sys.executable, "-m", "gateway"]

_T = TypeVar("_T")


def wait_until(predicate: Callable[[], _T], timeout: float, what: str | Callable[[], str]) -> _T:
    """Poll `predicate` until it returns something true (returned); AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"not within {timeout} s: {detail}")
        time.sleep(0.02)


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without GATEWAY_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(extra or {})
    return env


class Gateway:
    """`gateway --config CONFIG ARGS...` started in the background; `result()` waits for it and checks it."""

    unfinished: ClassVar[list[Gateway]] = []  # started and not waited for yet: see reap()

    def __init__(self, config: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [*GATEWAY, "--config", str(config), "--log-level", "warning", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(env),
        )
        Gateway.unfinished.append(self)

    @classmethod
    def reap(cls) -> None:
        """Kill and wait for every command a failed test left running."""
        while cls.unfinished:
            command = cls.unfinished.pop()
            if command.process.poll() is None:
                command.process.kill()
            command.process.communicate()

    def result(self, expect: int | None = 0, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Wait for the end; check the exit code unless `expect` is None."""
        if self in Gateway.unfinished:
            Gateway.unfinished.remove(self)
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise AssertionError(f"gateway {' '.join(self.args)} did not end within {timeout} s") from None
        done = subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, stderr)
        if expect is not None:
            assert done.returncode == expect, (self.args, done.returncode, stdout[-2000:], stderr[-2000:])
        return done

    def json(self) -> Any:
        """What it printed, as JSON (it must exit 0)."""
        return json.loads(self.result().stdout)


def gateway(
    config: Path, *args: str, env: Mapping[str, str] | None = None, expect: int | None = 0, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `gateway --config CONFIG ARGS...` to its end; check its exit code unless `expect` is None."""
    return Gateway(config, *args, env=env).result(expect, timeout)


def gateway_json(config: Path, *args: str, env: Mapping[str, str] | None = None) -> Any:
    """The JSON a `gateway ... --json` command prints."""
    return Gateway(config, *args, env=env).json()


class WorkerProcess:
    """`python -m gateway run --config CONFIG` with stdout and stderr in files that can be read while it runs."""

    _count = 0

    def __init__(
        self, config: Path, env: Mapping[str, str] | None = None, name: str = "worker", nofile: int | None = None
    ) -> None:
        WorkerProcess._count += 1
        self.config = config
        self.env = environment(env)
        self.nofile = nofile  # its limit of open file descriptors (RLIMIT_NOFILE), when given
        folder = config.parent
        self.stdout_path = folder / f"{name}-{WorkerProcess._count}.stdout"
        self.stderr_path = folder / f"{name}-{WorkerProcess._count}.stderr"
        self.process: subprocess.Popen[bytes] | None = None
        self.health_port: int | None = None
        self.exit_code: int | None = None
        self._files: list[IO[bytes]] = []
        self._parsed: list[dict[str, Any]] = []
        self._offset = 0

    # the process

    def start(self, *, wait: bool = True, timeout: float = 20.0) -> Self:
        """Start it; with `wait`, until its `worker_started` line (which gives the health port)."""
        out = self.stdout_path.open("wb")
        err = self.stderr_path.open("wb")
        self._files = [out, err]
        self.process = subprocess.Popen(
            [*_limited(self.nofile), "run", "--config", str(self.config)],
            stdout=out,
            stderr=err,
            env=self.env,
            cwd=self.config.parent,
        )
        if wait:
            started = self.wait_log("worker_started", timeout=timeout)
            self.health_port = started["health_port"]
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def wait_exit(self, timeout: float) -> int:
        """The exit code, waited for at most `timeout` seconds (AssertionError after)."""
        assert self.process is not None
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the worker did not exit within {timeout} s\n{self.tail()}") from None
        self._close_files()
        return self.exit_code

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for the exit code (which must come within `timeout`)."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL (if still running) and reap."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.exit_code = self.process.wait(10)
        self._close_files()

    def _close_files(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []

    # its logs

    def lines(self) -> list[dict[str, Any]]:
        """Every complete JSON line written to stdout so far (a line that is not JSON is kept as {"raw": ...})."""
        with self.stdout_path.open("rb") as stream:
            stream.seek(self._offset)
            chunk = stream.read()
        end = chunk.rfind(b"\n")
        if end >= 0:
            for raw in chunk[:end].split(b"\n"):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = {"raw": raw.decode("utf-8", "replace")}
                self._parsed.append(parsed if isinstance(parsed, dict) else {"raw": parsed})
            self._offset += end + 1
        return list(self._parsed)

    def events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """The log lines of this event whose fields have these values."""
        return [
            line
            for line in self.lines()
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]

    def wait_log(self, event: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The first log line of this event with these fields, waited for; fails at once if the worker exits."""

        def found() -> dict[str, Any] | None:
            matches = self.events(event, **fields)
            if matches:
                return matches[0]
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}) before {event}\n{self.tail()}")
            return None

        return wait_until(found, timeout, lambda: f"log line {event} {fields}\n{self.tail()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, count: int = 15) -> str:
        """The last log lines and stderr, for failure messages."""
        shown = "\n  ".join(json.dumps(line)[:400] for line in self.lines()[-count:])
        return f"last log lines:\n  {shown}\nstderr:\n{self.stderr()[-2000:]}"

    # its health endpoint

    def url(self, path: str) -> str:
        assert self.health_port is not None, "the worker has no health port"
        return f"http://127.0.0.1:{self.health_port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        """GET a path of the health endpoint: the status and body, whatever the status."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as answer:  # noqa: S310 - a local http URL
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/readyz")
        return status, json.loads(body)

    def metrics(self) -> dict[str, float]:
        """/metrics as `name{labels}` -> value (labels as Prometheus prints them, sorted by name)."""
        status, body = self.get("/metrics")
        assert status == 200, status
        found: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                found[name] = float(value)
        return found


def _limited(nofile: int | None) -> list[str]:
    """`python -m gateway`, under a limit of `nofile` open file descriptors when given (set by the child itself
    before it runs the gateway: no preexec_fn in a test process that has threads)."""
    if nofile is None:
        return GATEWAY
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile})); "
        "sys.argv[0] = 'gateway'; runpy.run_module('gateway', run_name='__main__')"
    )
    return [sys.executable, "-c", code]


def drop(folder: Path, name: str, data: str | bytes) -> Path:
    """Put a file into a drop folder as writers who use completion "rename" do: `.NAME.tmp`, then a rename."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(body)
    target = folder / name
    os.replace(temporary, target)
    return target


def stock_csv(levels: Mapping[str, int], as_of: str) -> str:
    """A stock snapshot: sku,quantity,as_of."""
    return "sku,quantity,as_of\n" + "".join(f"{sku},{quantity},{as_of}\n" for sku, quantity in levels.items())


def big_stock_csv(path: Path, rows: int, as_of: str = "2026-01-01T00:00:00Z") -> Path:
    """A snapshot of `rows` SKUs, written straight to `path` (not into a watched folder)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("sku,quantity,as_of\n")
        out.writelines(f"SKU{i:08d},{(i * 7919) % 500},{as_of}\n" for i in range(rows))
    return path


def restart_sshd(server: sshd_support.Sshd, timeout: float = 10.0) -> None:
    """Start a stopped test sshd again on the same port, with the same keys; wait until it answers."""
    pid_file = server.root / "sshd.pid"
    pid_file.unlink(missing_ok=True)
    subprocess.run(
        [str(sshd_support.SSHD), "-f", str(server.root / "sshd_config"), "-E", str(server.log)],
        check=True,
        capture_output=True,
    )

    def up() -> bool:
        with contextlib.suppress(OSError, ValueError):
            server.pid = int(pid_file.read_text())
            return sshd_support._accepts(server.port)
        return False

    wait_until(up, timeout, f"sshd back on port {server.port}")


# the worker's defaults in these tests: a free health port, no jitter, quick delivery passes
WORKER_DEFAULTS: dict[str, Any] = {
    "health_port": 0,
    "jitter": 0.0,
    "delivery_interval": 0.5,
    "shutdown_grace": 10.0,
    "misfire_grace": 5.0,
}


def write_worker_config(
    folder: Path, partners: dict[str, dict[str, Any]], worker: Mapping[str, Any] | None = None
) -> Path:
    """`folder/gateway.toml` with these partners (see tests.conftest.write_config) and a `[worker]` table."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(folder, partners)
    options = WORKER_DEFAULTS | dict(worker or {})
    table = "\n".join(f"{key} = {toml_value(value)}" for key, value in options.items())
    path.write_text(path.read_text(encoding="utf-8") + f"\n[worker]\n{table}\n", encoding="utf-8")
    return path
