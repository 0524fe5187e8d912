"""What the command line takes in and what it shows: identifiers under the one identifier rule, order lines,
and text made safe for a terminal.

Every command's SKU, order id, assembly and collection goes through IDENTIFIER, so a value the files and the
API would refuse is refused here too, before anything runs (exit 2, as for any usage error). Everything the
commands print goes through `echo`, which shows control characters as escapes: a SKU stored before the rule
existed, a file name or an error message cannot move the cursor, clear the screen or forge a line.
"""

from __future__ import annotations

import re
from typing import IO, Any

import click

from gateway.domain import identifiers
from gateway.domain.orders import RequestedLine

MAX_QUANTITY_DIGITS = 12  # as in files: far beyond any stock, well inside a 64-bit column


def shown(value: str, width: int = 40) -> str:
    """`value` quoted for a message: cut to `width` characters, control characters escaped."""
    cut = value if len(value) <= width else value[:width] + "..."
    return f"'{identifiers.escape_controls(cut)}'"


class Identifier(click.ParamType):  # type: ignore[type-arg, unused-ignore]  # generic from click 8.5 on
    """A SKU, order id, assembly or collection: 1 to 128 characters, no control character, no padding."""

    name = "identifier"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """`value` as given, or a usage error saying why it is not an identifier."""
        text = str(value)
        why = identifiers.problem(text)
        if why is not None:
            self.fail(f"{shown(text)} is not an identifier: {why}", param, ctx)
        return text


IDENTIFIER = Identifier()


class OrderLine(click.ParamType):  # type: ignore[type-arg, unused-ignore]  # generic from click 8.5 on
    """SKU:QTY, the SKU an identifier and QTY a whole number of at least 1."""

    name = "SKU:QTY"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> RequestedLine:
        """The requested line, or a usage error saying what is wrong with it."""
        if isinstance(value, RequestedLine):
            return value
        text = str(value)
        sku, sep, quantity = text.rpartition(":")
        if not sep or not (quantity.isascii() and quantity.isdigit()) or len(quantity) > MAX_QUANTITY_DIGITS:
            self.fail(
                f"{shown(text)}: expected SKU:QTY with QTY a whole number of at least 1 "
                f"(at most {MAX_QUANTITY_DIGITS} digits)",
                param,
                ctx,
            )
        if int(quantity) < 1:
            self.fail(f"{shown(text)}: the quantity must be at least 1", param, ctx)
        why = identifiers.problem(sku)
        if why is not None:
            self.fail(f"{shown(text)}: the SKU {shown(sku)} is not an identifier: {why}", param, ctx)
        return RequestedLine(sku, int(quantity))


ORDER_LINE = OrderLine()

_FIELD = re.compile(r"\b(assembly|collection)\b")


def check_channel(assembly: str | None, collection: str | None) -> None:
    """A usage error unless --assembly and --collection name a channel together (or neither is given)."""
    why = identifiers.channel_problem(assembly, collection)
    if why is not None:
        raise click.UsageError(_FIELD.sub(r"--\1", why))  # the rule names fields, the command line options


def echo(message: str = "", *, err: bool = False, file: IO[str] | None = None) -> None:
    """Print one line (to stdout, or stderr with err), every control character in it shown as an escape."""
    click.echo(identifiers.escape_controls(message), file=file, err=err)


class EscapedUsageError(click.UsageError):
    """A usage error shown with the control characters of its message escaped (click quotes some of what was
    typed, but not all: an unexpected extra argument is shown as typed)."""

    def __init__(self, original: click.UsageError) -> None:
        super().__init__(identifiers.escape_controls(original.format_message()), original.ctx)


class SafeGroup(click.Group):
    """A command group whose usage errors, its own and its sub-commands', are shown escaped (EscapedUsageError)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """The group's context, from its own options."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise EscapedUsageError(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        """Parse and run the sub-command."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise EscapedUsageError(exc) from exc
