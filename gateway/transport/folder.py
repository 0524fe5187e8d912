"""Local drop folders: listing and moving with the standard library, watching with watchdog."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from gateway import logs
from gateway.domain.identifiers import escape_controls
from gateway.files import write_atomically
from gateway.settings import FolderSource
from gateway.transport.errors import TransportError
from gateway.transport.inbox import (
    REPORT_SUFFIX,
    Entry,
    Staged,
    is_temporary,
    report_bytes,
    safe_name,
    shown_name,
    stage_hashed,
)

log = logs.get(__name__)


class FolderInbox:
    """One local folder. Links and anything outside it are refused."""

    def __init__(self, settings: FolderSource) -> None:
        self.settings = settings
        self.name = settings.name
        self.folder = settings.path
        self.refused: list[str] = []

    def entries(self) -> list[Entry]:
        """Regular files directly in the folder, with their link counts, whatever their names (the pickup refuses
        names it never takes); a symbolic link is refused (logged once per pass)."""
        found: list[Entry] = []
        try:
            with os.scandir(self.folder) as listing:
                for item in listing:
                    try:
                        info = item.stat(follow_symlinks=False)
                    except FileNotFoundError:  # renamed or removed since the listing (a writer's temporary file)
                        continue
                    if stat.S_ISLNK(info.st_mode):
                        if not item.name.startswith("."):
                            self.refused.append(item.name)
                            shown = escape_controls(shown_name(item.name))
                            log.warning("folder_link_refused", source=self.name, file=shown)
                        continue
                    if stat.S_ISREG(info.st_mode):
                        found.append(Entry(item.name, info.st_size, info.st_mtime, info.st_nlink))
        except OSError as exc:
            raise TransportError(f"cannot list {self.folder}: {exc.strerror or exc}") from exc
        return found

    def _path(self, entry: Entry) -> Path:
        if not safe_name(entry.name):
            raise TransportError(f"{entry.shown!r} is not a file of {self.folder}")
        return self.folder / entry.name

    def fetch(self, entry: Entry, staging: Path) -> Staged:
        """Copy into staging under a temporary name, hashing as it is written, fsync, rename."""
        source = self._path(entry)
        try:
            with os.fdopen(os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as src:
                opened = os.fstat(src.fileno())
                if not stat.S_ISREG(opened.st_mode):
                    raise TransportError(f"{entry.shown} is not a regular file")
                if opened.st_nlink > 1:  # linked since the listing: another name reaches these bytes
                    raise TransportError(f"{entry.shown} has {opened.st_nlink} hard links; links are never taken")
                return stage_hashed(staging, lambda out: shutil.copyfileobj(src, out, 1 << 20))
        except OSError as exc:
            raise TransportError(f"cannot copy {entry.shown}: {exc.strerror or exc}") from exc

    def fetch_many(self, entries: Sequence[Entry], staging: Path) -> Iterator[tuple[Entry, Staged | TransportError]]:
        """Copy files one after another, yielded in the order given (each a staged file or an error)."""
        for entry in entries:
            try:
                yield entry, self.fetch(entry, staging)
            except TransportError as exc:
                yield entry, exc

    def _move(self, entry: Entry, sub_folder: str, marker_suffix: str) -> Path:
        source = self._path(entry)
        target_folder = self.folder / sub_folder
        try:
            target_folder.mkdir(exist_ok=True)
            target = target_folder / entry.name
            if target.exists():  # the same name came before: keep both
                target = target_folder / f"{entry.name}.{uuid.uuid4().hex[:8]}"
            os.replace(source, target)
            (self.folder / (entry.name + marker_suffix)).unlink(missing_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot move {entry.shown} to {sub_folder}/: {exc.strerror or exc}") from exc
        return target

    def archive(self, entry: Entry, marker_suffix: str, report: Mapping[str, object] | None = None) -> None:
        """Move to archive/ (or delete), with the report (refused rows, warnings) beside it when there is one."""
        if self.settings.delete:
            try:
                self._path(entry).unlink()
                (self.folder / (entry.name + marker_suffix)).unlink(missing_ok=True)
            except OSError as exc:
                raise TransportError(f"cannot delete {entry.shown}: {exc.strerror or exc}") from exc
            return
        target = self._move(entry, self.settings.archive, marker_suffix)
        if report is not None:
            self._write_report(target, report)

    def fail(self, entry: Entry, marker_suffix: str, report: Mapping[str, object]) -> None:
        """Move to failed/ with NAME.error.json beside it."""
        target = self._move(entry, self.settings.failed, marker_suffix)
        self._write_report(target, report)

    def _write_report(self, target: Path, report: Mapping[str, object]) -> None:
        try:
            write_atomically(target.with_name(target.name + REPORT_SUFFIX), report_bytes(report))
        except OSError as exc:
            raise TransportError(
                f"cannot write the report of {shown_name(target.name)}: {exc.strerror or exc}"
            ) from exc

    def close(self) -> None:
        """Nothing to let go of."""


class _Nudge(FileSystemEventHandler):
    def __init__(self, folder: Path, wake: Callable[[], None]) -> None:
        self.folder = folder
        self.wake = wake

    def _inside(self, path: str | bytes) -> bool:
        """A file directly in the folder, other than a writer's temporary file (its rename will wake us)."""
        found = Path(os.fsdecode(path))
        return found.parent == self.folder and not is_temporary(found.name)

    def on_closed(self, event: FileSystemEvent) -> None:
        if self._inside(event.src_path):
            self.wake()

    def on_moved(self, event: FileSystemEvent) -> None:
        if self._inside(event.dest_path):
            self.wake()

    def on_created(self, event: FileSystemEvent) -> None:
        # a done-marker or an empty file may be created without a close event on some systems
        if self._inside(event.src_path):
            self.wake()


class FolderWatcher:
    """Calls `on_change` when a file is written or moved into the folder, and every `rescan_seconds` anyway.

    `on_change` runs on the watcher's own thread, one call at a time; it is called once at start so files
    already present are taken too. Events that arrive while it runs coalesce into one more call.
    """

    def __init__(self, settings: FolderSource, on_change: Callable[[], None]) -> None:
        self.settings = settings
        self.on_change = on_change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching (and take what is already there)."""
        folder = self.settings.path
        folder.mkdir(parents=True, exist_ok=True)
        # Recursive, with archive/ and failed/ there from the start: a file moved aside is then one event pair
        # inside the watch. Moved out of a flat watch, watchdog holds it 0.5 s for a partner that never comes,
        # and every event queued behind it (the next file's arrival) waits too.
        for sub_folder in (self.settings.archive, self.settings.failed):
            (folder / sub_folder).mkdir(exist_ok=True)
        observer: BaseObserver = PollingObserver(timeout=1) if self.settings.poll else Observer()
        observer.schedule(_Nudge(folder.resolve(), self._wake.set), str(folder.resolve()), recursive=True)
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.settings.name}", daemon=True)
        self._wake.set()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.rescan_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self.on_change()
            except Exception:  # a failed pass is logged and retried at the next event or rescan
                log.exception("folder_pass_failed", source=self.settings.name)

    def stop(self) -> None:
        """Stop watching; a pass in progress finishes first."""
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=60)


class FolderOutbound:
    """A local folder files are delivered into: written under a hidden temporary name, fsynced, renamed."""

    def __init__(self, path: Path) -> None:
        self.folder = path

    def __enter__(self) -> FolderOutbound:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def write(self, name: str, data: bytes) -> str:
        """Write `data` as `name` (replacing a file of that name); return its path."""
        if not safe_name(name):
            raise TransportError(f"{name!r} is not a file name")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.folder / name
            write_atomically(target, data)
        except OSError as exc:
            raise TransportError(f"cannot write {name} in {self.folder}: {exc.strerror or exc}") from exc
        return str(target)
