"""Datasets: which record model, table and key columns belong to an input prefix.

The catalogue (``CATALOGUE``) declares each dataset once: its record model, its table and the columns that identify
a record. The stack config says under which prefix each dataset's files arrive (``DATASETS`` in the environment:
``[{"prefix": "input/orders/", "dataset": "orders"}]``). Every row also carries where it came from
(``source_bucket``, ``source_key``, ``source_version``, ``record_index``); the natural key a load is idempotent on
is the object key, its version (or ETag) and the record's own key columns.

>>> routes = Routes.from_config([{"prefix": "input/orders/", "dataset": "orders"}])
>>> routes.route("input/orders/2024/01/a.json").table
'orders'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from file_ingestion.records import Customer, Order, Record

SOURCE_COLUMNS = ("source_bucket", "source_key", "source_version", "record_index")


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
        """The natural key: the object (key and version or ETag) plus the record's own key."""
        return ("source_key", "source_version", *self.model.key_fields)


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
