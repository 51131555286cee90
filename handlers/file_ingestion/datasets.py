"""Datasets: which record model, table and key columns belong to an input prefix.

The catalogue (``CATALOGUE``) declares each dataset once: its record model, its table and the columns that identify
a record. The stack config says under which prefix each dataset's files arrive (``DATASETS`` in the environment:
``[{"prefix": "input/orders/", "dataset": "orders"}]``). Every row also carries where it came from: its file's
short id (``file_id``, a row of ``ingested_files`` with the bucket, key, version and the SHA-256 of the content) and
its ``record_index``; the natural key a load is idempotent on is the file (one per dataset and content) and the
record's own key columns.

>>> routes = Routes.from_config([{"prefix": "input/orders/", "dataset": "orders"}])
>>> routes.route("input/orders/2024/01/a.json").table
'orders'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from file_ingestion.records import Customer, Order, Record

# Per row: the file (a short id, whatever the length of its object key) and the record's place in it.
SOURCE_COLUMNS = ("file_id", "record_index")
FILES_TABLE = "ingested_files"


@dataclass(frozen=True)
class Dataset:
    name: str
    model: type[Record]
    table: str

    @property
    def data_columns(self) -> tuple[str, ...]:
        return tuple(self.model.model_fields)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a load writes, in COPY order."""
        return SOURCE_COLUMNS + self.data_columns

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The natural key: the file (one per content) plus the record's own key."""
        return ("file_id", *self.model.key_fields)


CATALOGUE: dict[str, Dataset] = {
    "orders": Dataset("orders", Order, "orders"),
    "customers": Dataset("customers", Customer, "customers"),
}


class UnknownDatasetError(ValueError):
    """The config names a dataset the catalogue does not declare."""


@dataclass(frozen=True)
class Route:
    prefix: str
    dataset: Dataset


@dataclass(frozen=True)
class Routes:
    """Prefix -> dataset, longest prefix first, so ``input/orders/eu/`` can be routed apart from ``input/orders/``."""

    routes: tuple[Route, ...]

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]],
                    catalogue: Mapping[str, Dataset] = CATALOGUE) -> Routes:
        routes = []
        for entry in entries:
            name = str(entry.get("dataset", ""))
            if name not in catalogue:
                raise UnknownDatasetError(f"dataset {name!r} (prefix {entry.get('prefix')!r}) is not declared; "
                                          f"declared datasets: {', '.join(sorted(catalogue))}")
            routes.append(Route(str(entry["prefix"]), catalogue[name]))
        return cls(tuple(sorted(routes, key=lambda r: len(r.prefix), reverse=True)))

    def route(self, key: str) -> Dataset | None:
        for candidate in self.routes:
            if key.startswith(candidate.prefix):
                return candidate.dataset
        return None

    @property
    def datasets(self) -> tuple[Dataset, ...]:
        return tuple({r.dataset.name: r.dataset for r in self.routes}.values())
