"""The record models: what one record of each dataset must look like. The data contract, one model per dataset.

A model's fields are its table's data columns, in order and by name (the migration creates them); every model
also names the field that identifies a record within its file (``key_fields``). Models are strict where JSON is
ambiguous (a number is not a string, a string is not a date unless ISO 8601) and forbid unknown fields, so a
producer's schema drift fails its file loudly instead of loading half a record.

Amounts are ``Money``: a JSON string holding the decimal's text, checked against the column's ``numeric(12,2)``
(at most ten integer digits and two decimals, not negative, no exponent) and parsed by PostgreSQL; a JSON number
is accepted too, through its float's shortest text (``1.50`` -> ``1.5``, ``1e2`` -> ``100``, as ``Decimal`` did),
so producers who need the exact text send strings. Not ``Decimal``: constructing and range-checking one per
record was a third of the cost of validating a file, and the column does the parsing anyway.

Adding a dataset: a model here, a migration in ``file_ingestion_migrate/migrations`` and a config entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Money = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", coerce_numbers_to_str=True)]


class Record(BaseModel):
    """Base of every record model."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=False)

    key_fields: ClassVar[tuple[str, ...]] = ()


class Order(Record):
    """One order, as the order system exports it."""

    key_fields: ClassVar[tuple[str, ...]] = ("order_id",)

    order_id: Identifier
    customer_id: Identifier
    order_date: dt.date = Field(strict=False)
    status: Literal["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
    currency: CurrencyCode
    total_amount: Money
    item_count: int = Field(ge=0, le=100_000, strict=True)


class Customer(Record):
    """One customer, as the CRM exports it."""

    key_fields: ClassVar[tuple[str, ...]] = ("customer_id",)

    customer_id: Identifier
    email: Email
    full_name: str = Field(min_length=1, max_length=200)
    country: CountryCode
    created_at: dt.datetime
    marketing_opt_in: bool = Field(False, strict=True)
