"""The long-running worker (`gateway run`): its name, its health endpoint, and the pace of its jobs."""

from __future__ import annotations

import socket

from pydantic import Field

from gateway.settings.base import Strict


class WorkerSettings(Strict):
    """The long-running worker (`gateway run`)."""

    name: str = Field(default_factory=socket.gethostname, min_length=1)  # matched by a source's `workers`

    health_host: str = "127.0.0.1"
    # /healthz, /readyz and /metrics; 0 picks a free port (logged in `worker_started`), none: no endpoint
    health_port: int | None = Field(default=8081, ge=0, le=65535)
    shutdown_grace: float = Field(default=30.0, gt=0)  # seconds to finish the items in hand after SIGTERM
    delivery_interval: float = Field(default=30.0, gt=0)  # a delivery pass at least this often (safety net)
    misfire_grace: float = Field(default=30.0, gt=0)  # a poll that could not start on time may start this late
    jitter: float = Field(default=5.0, ge=0)  # up to this many seconds added to each poll, so partners do not
    # poll in lock-step
    staleness_factor: float = Field(default=3.0, ge=1)  # /readyz: a source is stale after this many intervals
