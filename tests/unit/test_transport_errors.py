"""The transports' errors live in one module the service layer imports without importing a transport."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from gateway.transport import bounds, errors, http, inbox

ERRORS = Path(__file__).resolve().parents[2] / "gateway" / "transport" / "errors.py"


def test_the_errors_module_imports_only_the_standard_library() -> None:
    """No paramiko, requests or watchdog, and no transport module: importing the errors connects to nothing."""
    tree = ast.parse(ERRORS.read_text(encoding="utf-8"))
    imported = [
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]
    assert [n for n in imported if n.split(".")[0] not in sys.stdlib_module_names and n != "__future__"] == []


def test_every_error_is_a_transport_error_and_the_old_import_paths_still_name_it() -> None:
    """The modules that defined the errors before still give the same classes."""
    for error in (errors.HostKeyRejected, errors.SftpRefused, errors.DeliveryFailed, errors.ApiConfigError):
        assert issubclass(error, errors.TransportError)
    assert issubclass(errors.RedirectRefused, errors.TransportError)
    assert issubclass(errors.PageTooLarge, errors.TransportError)
    assert (inbox.TransportError, inbox.HostKeyRejected) == (errors.TransportError, errors.HostKeyRejected)
    assert (http.DeliveryFailed, http.ApiConfigError) == (errors.DeliveryFailed, errors.ApiConfigError)
    assert (bounds.PageTooLarge, bounds.EXCERPT_BYTES) == (errors.PageTooLarge, errors.EXCERPT_BYTES)


def test_a_refusal_of_every_batch_is_told_apart_from_one_batch_refused() -> None:
    """401, 403, 404 and 405 would meet every batch; a 400 or a lost connection says nothing about the next."""
    assert [errors.DeliveryFailed("x", status=s).refuses_all for s in (401, 403, 404, 405)] == [True] * 4
    assert [errors.DeliveryFailed("x", status=s).refuses_all for s in (400, 409, 500, None)] == [False] * 4
