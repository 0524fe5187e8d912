"""How a partner writes its flat files: delimiter, encoding and column names per kind, and the longest line."""

from __future__ import annotations

import codecs
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from gateway.formats.csvfile import MAX_LINE_BYTES, CsvOptions
from gateway.formats.rows import Kind
from gateway.settings.base import Strict


class StockColumns(Strict):
    """Header names of a partner's stock files, where they differ from the defaults."""

    sku: str = "sku"
    quantity: str = "quantity"
    as_of: str = "as_of"
    available_from: str = "available_from"  # dated supply: units that exist from that date on (none: on hand)


class OrderColumns(Strict):
    """Header names of a partner's order files."""

    order_id: str = "order_id"
    sku: str = "sku"
    quantity: str = "quantity"
    status: str = "status"
    assembly: str = "assembly"
    collection: str = "collection"


class ConfirmationColumns(Strict):
    """Header names of a partner's confirmation files."""

    order_id: str = "order_id"
    sku: str = "sku"
    confirmed_quantity: str = "confirmed_quantity"
    confirmed_at: str = "confirmed_at"


class CapColumns(Strict):
    """Header names of a partner's cap files."""

    sku: str = "sku"
    assembly: str = "assembly"
    collection: str = "collection"
    max: str = "max"


class AcknowledgementColumns(Strict):
    """Header names of a partner's acknowledgement files (status only, one row per order)."""

    order_id: str = "order_id"
    status: str = "status"
    updated_at: str = "updated_at"


class CollectionColumns(Strict):
    """Header names of a partner's collections files (a collection's dates)."""

    assembly: str = "assembly"
    collection: str = "collection"
    opens_at: str = "opens_at"
    closes_at: str = "closes_at"
    pickup_on: str = "pickup_on"


class _FileSettings(Strict):
    delimiter: Literal[",", ";", "\t"] | None = None
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    def csv_options(self) -> CsvOptions:
        """These settings as the CSV reader's options."""
        columns: BaseModel = getattr(self, "columns")  # noqa: B009 - every subclass declares it
        return CsvOptions(delimiter=self.delimiter, encoding=self.encoding, columns=columns.model_dump())


class StockFileSettings(_FileSettings):
    """How a partner writes stock snapshots."""

    columns: StockColumns = StockColumns()


class OrderFileSettings(_FileSettings):
    """How a partner writes order files."""

    columns: OrderColumns = OrderColumns()


class ConfirmationFileSettings(_FileSettings):
    """How a partner writes confirmation files."""

    columns: ConfirmationColumns = ConfirmationColumns()


class CapFileSettings(_FileSettings):
    """How a partner writes cap files."""

    columns: CapColumns = CapColumns()


class AcknowledgementFileSettings(_FileSettings):
    """How a partner writes acknowledgement files."""

    columns: AcknowledgementColumns = AcknowledgementColumns()


class CollectionFileSettings(_FileSettings):
    """How a partner writes collections files."""

    columns: CollectionColumns = CollectionColumns()


class PartnerFiles(Strict):
    """File options per kind."""

    stock: StockFileSettings = StockFileSettings()
    orders: OrderFileSettings = OrderFileSettings()
    confirmations: ConfirmationFileSettings = ConfirmationFileSettings()
    caps: CapFileSettings = CapFileSettings()
    acknowledgements: AcknowledgementFileSettings = AcknowledgementFileSettings()
    collections: CollectionFileSettings = CollectionFileSettings()
    # a header or row line longer than this (in bytes, its line break not counted) refuses the whole file
    max_line_bytes: int = Field(default=MAX_LINE_BYTES, ge=256)

    def csv_options(self, kind: Kind) -> CsvOptions:
        """The CSV reader's options for one kind."""
        settings: _FileSettings = getattr(self, kind.value)
        return replace(settings.csv_options(), max_line_bytes=self.max_line_bytes)
