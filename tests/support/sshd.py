"""A real OpenSSH sshd on 127.0.0.1, for tests and benchmarks: throw-away keys, `internal-sftp`, a free port.

    with running(tmp) as server:        # or: server = start(tmp) ... server.stop()
        folder = server.remote_folder()  # a fresh, empty folder the SFTP user (root) reads and writes
        ... SftpSource(host="127.0.0.1", port=server.port, username=server.user,
                       private_key_file=server.user_key, known_hosts=server.known_hosts, remote_path=str(folder))
        server.kill_sessions()           # cut every open connection (the listener stays up)

It runs as root (PermitRootLogin prohibit-password, key authentication only) because sshd needs root to
switch users; the SFTP user's folders are ordinary absolute paths under the temporary folder. Nothing waits
a fixed time: start-up and shutdown are polled with deadlines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
SFTP = "sftp"
HOST = "127.0.0.1"
USER = "root"

_CONFIG = """\
Port {port}
ListenAddress {host}
HostKey {root}/host_key
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/user_key.pub
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
UseDNS no
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
"""


class SshdUnavailable(RuntimeError):
    """OpenSSH's server cannot run here (not installed, not root, or it would not start)."""


def _require() -> None:
    if not SSHD.exists():
        raise SshdUnavailable(
            f"{SSHD} not found: these tests need a real OpenSSH server; install it with "
            "`apt-get install -y openssh-server` (make test does this on a fresh machine)"
        )
    if shutil.which(SSH_KEYGEN) is None:
        raise SshdUnavailable("ssh-keygen not found: install openssh-client")
    if os.geteuid() != 0:
        raise SshdUnavailable("the test sshd runs as root (it switches users and logs in as root); run as root")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree = _children()
    found: list[int] = []
    stack = list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(tree.get(child, []))
    return found


@dataclass
class Sshd:
    """A started sshd and the files a client needs to reach it."""

    root: Path
    port: int
    pid: int
    host: str = HOST
    user: str = USER

    @property
    def user_key(self) -> Path:
        """The client's private key (no passphrase)."""
        return self.root / "user_key"

    @property
    def host_key_pub(self) -> Path:
        return self.root / "host_key.pub"

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file holding this server's real host key."""
        return self.root / "known_hosts"

    @property
    def log(self) -> Path:
        return self.root / "sshd.log"

    def remote_folder(self, name: str | None = None) -> Path:
        """A fresh empty folder on the 'remote' side (an absolute local path the SFTP user can use)."""
        folder = self.root / "remote" / (name or uuid.uuid4().hex[:12])
        folder.mkdir(parents=True)
        return folder

    def other_known_hosts(self, path: Path) -> Path:
        """A known_hosts file naming this host and port with another key: the real key must be refused."""
        other = self.root / f"other_{uuid.uuid4().hex[:8]}"
        _keygen(other, "not-the-host-key")
        path.write_text(f"[{self.host}]:{self.port} {(other.with_suffix('.pub')).read_text().strip()}\n")
        return path

    def ssh_options(self) -> list[str]:
        """Options for OpenSSH clients (ssh, sftp, scp) to reach this server with its key, checking its host key."""
        return [
            "-i",
            str(self.user_key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ]

    def sftp_batch(self, commands: str, *, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run OpenSSH's `sftp -b -` with these commands (one per line); raise with its output if it fails."""
        done = subprocess.run(
            [SFTP, *self.ssh_options(), "-q", "-P", str(self.port), "-b", "-", f"{self.user}@{self.host}"],
            input=commands,
            capture_output=True,
            text=True,
            cwd=cwd,
            check=False,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sftp -b failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def session_pids(self) -> list[int]:
        """The per-connection processes: every descendant of the listener."""
        return _descendants(self.pid)

    def kill_sessions(self) -> list[int]:
        """SIGKILL every per-connection process (cutting every open connection); the listener keeps running."""
        killed = []
        for pid in self.session_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the listener (by its PidFile) and every session; wait until they are gone."""
        pids = [self.pid, *self.session_pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if pid == self.pid else signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.01)


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect((HOST, port))
        except OSError:
            return False
        with contextlib.suppress(OSError):
            return probe.recv(4).startswith(b"SSH-")
        return False


def start(root: Path, timeout: float = 10.0, attempts: int = 3) -> Sshd:
    """Generate keys and a config under `root`, start sshd on a free port and wait until it answers."""
    _require()
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation folder
    if not (root / "host_key").exists():
        _keygen(root / "host_key", "test-host")
        _keygen(root / "user_key", "test-user")
    problem = ""
    for _ in range(attempts):  # another process may take the free port between our look and sshd's bind
        port = _free_port()
        (root / "sshd_config").write_text(_CONFIG.format(port=port, host=HOST, root=root))
        pid_file = root / "sshd.pid"
        pid_file.unlink(missing_ok=True)
        log = root / "sshd.log"
        done = subprocess.run(
            [str(SSHD), "-f", str(root / "sshd_config"), "-E", str(log)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            problem = done.stderr.strip() or (log.read_text() if log.exists() else "")
            continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = int(pid_file.read_text()) if pid_file.exists() and pid_file.read_text().strip() else None
            if pid is not None and not _alive(pid):
                break
            if pid is not None and _accepts(port):
                host_key = (root / "host_key.pub").read_text().strip()
                (root / "known_hosts").write_text(f"[{HOST}]:{port} {host_key}\n")
                return Sshd(root, port, pid)
            time.sleep(0.01)
        problem = log.read_text() if log.exists() else "no log"
        if pid_file.exists() and pid_file.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    raise SshdUnavailable(f"sshd did not start on {HOST}: {problem.strip()[-2000:]}")


@contextlib.contextmanager
def running(root: Path, timeout: float = 10.0) -> Iterator[Sshd]:
    """An sshd for the duration of the block, stopped afterwards whatever happens."""
    server = start(root, timeout)
    try:
        yield server
    finally:
        server.stop()
