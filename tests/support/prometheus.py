"""The real Prometheus server (Debian's `prometheus`) on 127.0.0.1, for end-to-end tests of the alerting rules.

    server = Prometheus(tmp / "prometheus", targets=["127.0.0.1:8081"], rules=[ALERTS]).start()
    server.wait_for_alert("GatewayOutboxTooOld", partner="shop")   # polled on /api/v1/alerts with a deadline
    server.stop()

Its configuration, storage and log are under its own folder; it scrapes and evaluates every second, so a rule that
compares two gauges fires within a few seconds of its condition. Nothing waits a fixed time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Self

from tests.support.worker import wait_until

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
HOST = "127.0.0.1"
JOB = "stock-gateway"  # the job name deploy/prometheus/alerts.yml and the README's scrape configuration use

_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
{rules}
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: {targets}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Prometheus:
    """A Prometheus server scraping `targets` under job "stock-gateway", with the given rule files."""

    def __init__(self, root: Path, targets: Sequence[str], rules: Sequence[Path]) -> None:
        self.root = root
        self.targets = list(targets)
        self.rules = [path.resolve() for path in rules]
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "prometheus.log"
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 15.0) -> Self:
        """Write its configuration, start it and wait until it is ready."""
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "prometheus.yml"
        rules = "\n".join(f"  - {json.dumps(str(path))}" for path in self.rules)
        config.write_text(_CONFIG.format(rules=rules, job=JOB, targets=json.dumps(self.targets)), encoding="utf-8")
        self._log = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address={HOST}:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._ready, timeout, lambda: f"prometheus ready on port {self.port}\n{self.tail()}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited ({self.process.returncode})\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, and SIGKILL if it has not exited within `timeout`."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self) -> str:
        """The end of its log, for failure messages."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:] if self.log.exists() else ""

    def api(self, path: str) -> Any:
        """GET /api/v1/PATH: its `data`."""
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/api/v1/{path}", timeout=5) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def alerts(self, name: str, **labels: str) -> list[dict[str, Any]]:
        """The pending and firing alerts of this name whose labels include `labels`."""
        return [
            alert
            for alert in self.api("alerts")["alerts"]
            if alert["labels"].get("alertname") == name and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]

    def firing(self, name: str, **labels: str) -> list[dict[str, Any]]:
        """The firing alerts of this name whose labels include `labels`."""
        return [alert for alert in self.alerts(name, **labels) if alert["state"] == "firing"]

    def value(self, query: str) -> float | None:
        """The value of an instant query that gives one sample (None when it gives none)."""
        result = self.api(f"query?query={urllib.parse.quote(query)}")["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def rule_evaluated(self, name: str, since: float) -> bool:
        """The alerting rule of this name was evaluated, without an error, after `since` (seconds since the epoch)."""
        for group in self.api("rules?type=alert")["groups"]:
            for rule in group["rules"]:
                if rule["name"] == name:
                    last = datetime.fromisoformat(rule["lastEvaluation"].replace("Z", "+00:00")).timestamp()
                    return bool(rule["health"] == "ok" and last > since)
        return False
