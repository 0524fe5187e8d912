"""SFTP benchmark: the gateway's SFTP source against OpenSSH's own `sftp -b`, on a real sshd on 127.0.0.1.

Two transfers, in the same run, from the same local sshd (tests/support/sshd.py):
  - one 200 MB file: `SftpInbox.fetch` against `sftp -b` `get`;
  - a folder of 5,000 small files (about 20 rows each): `SftpInbox.fetch_many` against `sftp -b` `get -r`.
The gateway's times include connecting and listing the folder, as OpenSSH's do. Each transfer runs
--repeat times per side, alternating sides, and the best time counts. Target: gateway within 1.5x of OpenSSH.

Usage: python bench/sftp.py [--big-mb 200] [--files 5000] [--repeat 2] [--workers N] [--profile] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import sshd  # noqa: E402 - after the path is set

TARGET = 1.5
T0 = "2026-01-01T00:00:00Z"


def make_big(path: Path, megabytes: int) -> None:
    """Incompressible bytes (OpenSSH does not compress by default; this keeps it honest if it did)."""
    rng = random.Random(7)
    block = 1 << 20
    with path.open("wb") as out:
        for _ in range(megabytes):
            out.write(rng.randbytes(block))


def make_small(folder: Path, count: int, rows: int = 20) -> None:
    folder.mkdir(parents=True)
    for n in range(count):
        lines = ["sku,quantity,as_of"] + [f"SKU{n:05d}{r:03d},{(n + r) % 97},{T0}" for r in range(rows)]
        (folder / f"stock-{n:05d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def openssh_big(server: sshd.Sshd, remote: Path, local: Path) -> float:
    target = fresh(local)
    started = time.perf_counter()
    server.sftp_batch(f'get "{remote}" "{target}/"\n')
    elapsed = time.perf_counter() - started
    assert (target / remote.name).stat().st_size == remote.stat().st_size
    return elapsed


def openssh_small(server: sshd.Sshd, remote: Path, local: Path, count: int) -> float:
    target = fresh(local)
    started = time.perf_counter()
    server.sftp_batch(f'get -r "{remote}" "{target}/"\n')
    elapsed = time.perf_counter() - started
    got = len(os.listdir(target / remote.name))
    assert got == count, f"sftp got {got} of {count} files"
    return elapsed


def source(server: sshd.Sshd, remote: Path, workers: int | None):  # type: ignore[no-untyped-def]
    from gateway.settings import SftpSource

    options = {"download_workers": workers} if workers else {}
    return SftpSource(
        type="sftp",
        name="bench",
        kind="stock",
        host=server.host,
        port=server.port,
        username=server.user,
        private_key_file=server.user_key,
        known_hosts=server.known_hosts,
        remote_path=str(remote),
        **options,
    )


def gateway_big(server: sshd.Sshd, remote: Path, local: Path) -> float:
    from gateway.transport.sftp import SftpInbox

    staging = fresh(local)
    started = time.perf_counter()
    with SftpInbox(source(server, remote.parent, None)) as inbox:
        [entry] = [e for e in inbox.entries() if e.name == remote.name]
        staged = inbox.fetch(entry, staging)
    elapsed = time.perf_counter() - started
    assert staged.path.stat().st_size == staged.size == remote.stat().st_size
    return elapsed


def gateway_small(server: sshd.Sshd, remote: Path, local: Path, count: int, workers: int | None) -> float:
    from gateway.transport.inbox import TransportError
    from gateway.transport.sftp import SftpInbox

    staging = fresh(local)
    started = time.perf_counter()
    with SftpInbox(source(server, remote, workers)) as inbox:
        entries = sorted(inbox.entries(), key=lambda e: (e.mtime, e.name))
        failed = [str(r) for _, r in inbox.fetch_many(entries, staging) if isinstance(r, TransportError)]
    elapsed = time.perf_counter() - started
    assert not failed, failed[:3]
    got = len(os.listdir(staging))  # each file staged under a fresh name (its digest taken as it was written)
    assert got == count, f"the gateway staged {got} of {count} files"
    return elapsed


def best(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def profiled(label: str, measure: Callable[[], float]) -> None:
    profile = cProfile.Profile()
    profile.enable()
    measure()
    profile.disable()
    print(f"\n--- profile: {label} (cumulative, top 25) ---")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="download_workers (default: the setting's)")
    parser.add_argument("--profile", action="store_true", help="Also profile one gateway run of each transfer.")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-sftp-"))
    try:
        with sshd.running(work / "sshd") as server:
            remote = server.remote_folder("data")
            big = remote / "big" / "big.bin"
            big.parent.mkdir()
            small = remote / "small"
            started = time.perf_counter()
            make_big(big, args.big_mb)
            make_small(small, args.files)
            print(f"generated {args.big_mb} MB and {args.files:,} small files in {time.perf_counter() - started:.1f} s")
            print(f"sshd on 127.0.0.1:{server.port}; best of {args.repeat} run(s) per side\n")

            local = work / "local"
            big_times = {"openssh": float("inf"), "gateway": float("inf")}
            small_times = dict(big_times)
            for _ in range(args.repeat):  # alternate sides, so drift in the machine's load hits both alike
                big_times["openssh"] = min(big_times["openssh"], openssh_big(server, big, local / "o-big"))
                big_times["gateway"] = min(big_times["gateway"], gateway_big(server, big, local / "g-big"))
                small_times["openssh"] = min(
                    small_times["openssh"], openssh_small(server, small, local / "o-small", args.files)
                )
                small_times["gateway"] = min(
                    small_times["gateway"], gateway_small(server, small, local / "g-small", args.files, args.workers)
                )
                shutil.rmtree(local, ignore_errors=True)

            rows = [
                (f"one {args.big_mb} MB file", big_times, f"{args.big_mb / big_times['gateway']:.0f} MB/s"),
                (f"{args.files:,} small files", small_times, f"{args.files / small_times['gateway']:,.0f} files/s"),
            ]
            header = f"{'transfer':<20} {'OpenSSH sftp -b':>16} {'gateway':>10} {'ratio':>7}  {'gateway rate':>14}"
            print(f"{header}  target")
            missed = False
            for label, times, rate in rows:
                ratio = times["gateway"] / times["openssh"]
                ok = ratio <= TARGET
                missed |= not ok
                verdict = "ok" if ok else f"MISSED (> {TARGET}x)"
                print(
                    f"{label:<20} {times['openssh']:>14.2f} s {times['gateway']:>8.2f} s {ratio:>6.2f}x  {rate:>14}  "
                    f"{verdict}"
                )
            if args.profile:
                profiled("gateway, big file", lambda: gateway_big(server, big, local / "g-big"))
                profiled(
                    "gateway, small files",
                    lambda: gateway_small(server, small, local / "g-small", args.files, args.workers),
                )
            shutil.rmtree(local, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
