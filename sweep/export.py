"""A sweep's store as files other tools read: runs, curves, fits and proposals as CSV, Parquet or JSON.

Each table is one file, OUTDIR/<table>.<format>, written to a temporary name and renamed into
place. The fits' parameters and the proposals' payloads are JSON in the store; their scalar
entries (nested dicts flattened, lists left out) also get a column each, e.g. params.alpha or
params.N_star.exponent, beside the full JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sweep.config import Choice
from sweep.errors import UserError
from sweep.rundir import atomic_write_bytes
from sweep.store import Store

TABLES = ("runs", "curves", "fits", "proposals")
EXPANDED = {"fits": ("params_json", "params"), "proposals": ("payload_json", "payload")}  # table: JSON column, prefix


class ExportFormat(Choice):
    csv = "csv"
    parquet = "parquet"
    json = "json"


@dataclass(frozen=True)
class ExportedTable:
    name: str
    path: Path
    rows: int


def store_tables(db_file: Path) -> dict[str, pd.DataFrame]:
    """The store's tables, the JSON columns expanded. A sweep never collected has no store: an empty
    one in memory gives the same tables, with their columns and no rows."""
    with Store(db_file if db_file.is_file() else Path(":memory:")) as store:
        tables = {"runs": store.runs(), "curves": store.curves(), "fits": store.fits(), "proposals": store.proposals()}
    for name, (column, prefix) in EXPANDED.items():
        tables[name] = expanded(tables[name], column, prefix)
    return tables


def expanded(table: pd.DataFrame, column: str, prefix: str) -> pd.DataFrame:
    """The table with a column per scalar entry of the JSON in `column` (absent ones are missing)."""
    records = [_scalars(json.loads(text), prefix) for text in table[column]]
    columns = list(dict.fromkeys(key for record in records for key in record))
    return pd.concat([table, pd.DataFrame(records, columns=columns, index=table.index)], axis=1)


def _scalars(value: object, name: str) -> dict[str, object]:
    if isinstance(value, dict):
        return {key: v for k, item in value.items() for key, v in _scalars(item, f"{name}.{k}").items()}
    return {} if isinstance(value, list) else {name: value}


def export_format(name: str) -> ExportFormat:
    try:
        return ExportFormat(name)
    except ValueError:
        raise UserError(f"format {name!r} is not one of {', '.join(f.value for f in ExportFormat)}") from None


def write_tables(tables: dict[str, pd.DataFrame], fmt: str, out: Path) -> list[ExportedTable]:
    fmt, out = export_format(fmt), Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory; choose another path")
    # Every table encoded before any file is replaced: one that cannot be encoded leaves an earlier export whole.
    files = {name: encoded(tables[name], fmt) for name in TABLES}
    written = []
    for name, data in files.items():
        path = out / f"{name}.{fmt.value}"
        atomic_write_bytes(path, data)
        written.append(ExportedTable(name, path, len(tables[name])))
    return written


def encoded(table: pd.DataFrame, fmt: ExportFormat) -> bytes:
    if fmt is ExportFormat.csv:
        return table.to_csv(index=False).encode()
    if fmt is ExportFormat.parquet:
        return table.to_parquet(index=False)
    # The standard library's JSON keeps every float exactly (pandas' to_json rounds to 10 digits).
    records = [{k: _json_value(v) for k, v in row.items()} for row in table.to_dict("records")]
    return (json.dumps(records, indent=1) + "\n").encode()


def _json_value(value: object) -> object:
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value
