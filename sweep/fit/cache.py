"""Reuse a fit when nothing it came from has changed: the runs, their curves, the fit config, and
the fitting code.

A report is stored as JSON under a key, the sha256 of those inputs (`fit_key`). The JSON names
each dataclass, and decoding builds only the classes in REGISTRY, field by field: nothing is
unpickled or imported by name from a file. Floats keep their exact value (the shortest repr that
reads back the same, inf and NaN as JSON's Infinity and NaN), and numpy scalars and arrays keep
their dtype, so a decoded report computes what the fitted one did.

The cache never fails a fit: a file that is missing, torn, edited or of another format is a miss,
and a write that fails (read-only directory, full disk) is skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from contextlib import suppress
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import sweep
from sweep.config import Counting, FitConfig, FitForm
from sweep.fit.aspect import AspectFit
from sweep.fit.bootstrap import Refits
from sweep.fit.envelope import EnvelopeFit
from sweep.fit.forms import Chinchilla, FloorPowerLaw, PowerLaw
from sweep.fit.hparams import GroupOptimum, HparamFit, LrLaw, Refit
from sweep.fit.isoflop import BudgetFit, IsoflopFit
from sweep.fit.parametric import ParametricFit
from sweep.fit.report import FitReport, Progress, fit_all
from sweep.rundir import atomic_write_text

FORMAT = 1  # of the cache files; a file of another format is a miss
MAX_ENTRIES = 8
# What fit_all reads of the runs (sweep/fit/report.py prepare and proxies, hparams.py grid_runs and
# fit_hparams, aspect.py) and of the curves (report.py curve_table). run_id first: rows sort by it.
RUN_COLUMNS = ("run_id", "N", "N_total", "D", "C", "loss", "budget", "d_model", "n_layers", "role", "lr", "batch_size")
CURVE_COLUMNS = ("run_id", "tokens", "flops", "eval_loss")

REGISTRY: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        FitReport,
        ParametricFit,
        Chinchilla,
        FloorPowerLaw,
        PowerLaw,
        IsoflopFit,
        BudgetFit,
        EnvelopeFit,
        Refits,
        HparamFit,
        GroupOptimum,
        LrLaw,
        Refit,
        AspectFit,
        Counting,
        FitForm,
    )  # fmt: skip
}
NUMERIC_KINDS = "biuf"  # the dtypes a stored scalar or array may have: bool, int, unsigned, float


class CacheFormatError(ValueError):
    """A stored report that this module did not write (or not in this format)."""


# --- the report as JSON ---------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A JSON-able form of a report or anything inside it. JSON arrays are lists; every other
    container is an object with one tag: tuple, dict (any keys), scalar (numpy), ndarray, enum,
    dataclass."""
    if isinstance(value, np.generic):
        if value.dtype.kind not in NUMERIC_KINDS:
            raise TypeError(f"a fit report cannot hold a numpy {value.dtype}")
        return {"scalar": value.dtype.str, "value": value.item()}
    if isinstance(value, Enum) or dataclasses.is_dataclass(value):
        if REGISTRY.get(type(value).__name__) is not type(value):
            raise TypeError(f"{type(value).__name__} is not a registered fit type (sweep/fit/cache.py REGISTRY)")
        if isinstance(value, Enum):
            return {"enum": type(value).__name__, "value": value.value}
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"dataclass": type(value).__name__, "fields": fields}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC_KINDS:
        return {"ndarray": value.dtype.str, "shape": list(value.shape), "values": value.ravel().tolist()}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"a fit report cannot hold a {type(value).__name__}")


def decode(value: Any) -> Any:
    """The inverse of encode; CacheFormatError on anything encode does not write."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v) for v in value]
    keys = set(expect(value, dict))
    if keys == {"tuple"}:
        return tuple(decode(v) for v in expect(value["tuple"], list))
    if keys == {"dict"}:
        return decode_dict(expect(value["dict"], list))
    if keys == {"scalar", "value"}:
        return numeric_dtype(value["scalar"]).type(value["value"])
    if keys == {"ndarray", "shape", "values"}:
        return np.array(expect(value["values"], list), dtype=numeric_dtype(value["ndarray"])).reshape(value["shape"])
    if keys == {"enum", "value"}:
        return registered(value["enum"], Enum)(value["value"])
    if keys == {"dataclass", "fields"}:
        return decode_dataclass(registered(value["dataclass"], object), expect(value["fields"], dict))
    raise CacheFormatError(f"unexpected object with keys {sorted(keys)}")


def registered(name: Any, kind: type) -> type:
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None or not issubclass(cls, kind):
        raise CacheFormatError(f"{name!r} is not a registered fit type")
    return cls


def decode_dataclass(cls: type, fields: dict) -> Any:
    if not dataclasses.is_dataclass(cls):
        raise CacheFormatError(f"{cls.__name__} is not a dataclass")
    expected = {f.name for f in dataclasses.fields(cls) if f.init}
    if set(fields) != expected:
        raise CacheFormatError(f"{cls.__name__} has fields {sorted(expected)}, not {sorted(fields)}")
    return cls(**{k: decode(v) for k, v in fields.items()})


def decode_dict(pairs: list) -> dict:
    out = {}
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise CacheFormatError("a dict entry must be a [key, value] pair")
        key = decode(pair[0])
        if isinstance(key, (list, dict)):  # unhashable: encode writes only hashable keys
            raise CacheFormatError("a dict key must be hashable")
        out[key] = decode(pair[1])
    return out


def expect(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise CacheFormatError(f"expected a {kind.__name__}, got {type(value).__name__}")
    return value


def numeric_dtype(name: Any) -> np.dtype:
    try:
        dtype = np.dtype(expect(name, str))
    except TypeError as exc:
        raise CacheFormatError(f"unknown dtype {name!r}") from exc
    if dtype.kind not in NUMERIC_KINDS:
        raise CacheFormatError(f"dtype {name!r} is not numeric")
    return dtype


def checksum(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --- the key ----------------------------------------------------------------------------------------


@functools.cache
def code_version() -> str:
    """sweep's version, numpy's and scipy's, and a hash of the sources of sweep/fit/: any change to
    the fitting code or the numerics under it is a new version, so no fit made by other code is reused."""
    versions = [sweep.__version__, *(metadata.version(package) for package in ("numpy", "scipy"))]
    digest = hashlib.sha256(" ".join(versions).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def table_digest(table: pd.DataFrame, columns: tuple[str, ...]) -> str:
    """sha256 of the table's values in these columns (those it has), whatever its row order."""
    present = [c for c in columns if c in table]
    rows = canonical_order(table, columns)[present]
    digest = hashlib.sha256(json.dumps([present, len(rows)]).encode())
    for column in present:
        data = column_bytes(rows[column])
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def canonical_order(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The table's rows sorted by each of these columns in turn (those it has; run_id first where
    present), so that the order the store returned them in changes neither the key nor the fit
    (the bootstrap draws rows by position). Text sorts as text (a column may mix types)."""
    present = [c for c in columns if c in table]
    keys = pd.DataFrame(
        {
            i: (c if pd.api.types.is_numeric_dtype(c) else c.astype(str))
            for i, (_, c) in enumerate(table[present].items())
        }
    )
    order = keys.reset_index(drop=True).sort_values(list(keys.columns), kind="mergesort").index
    return table.iloc[order]


def column_bytes(column: pd.Series) -> bytes:
    """Numbers as float64 (an int and its float are one value; every NaN is one NaN), else text."""
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return b"f" + np.where(np.isnan(values), np.nan, values).tobytes()
    return b"s" + json.dumps([None if pd.isna(v) else str(v) for v in column]).encode()


def inputs_digest(runs: pd.DataFrame, config: FitConfig, curves: pd.DataFrame | None) -> str:
    """sha256 of what a fit reads: the runs, the curves of those runs, the fit config and the code."""
    if curves is not None and "run_id" in runs and "run_id" in curves:
        curves = curves[curves["run_id"].isin(runs["run_id"])]
    parts = {
        "code": code_version(),
        "runs": table_digest(runs, RUN_COLUMNS),
        "curves": None if curves is None else table_digest(curves, CURVE_COLUMNS),
        "config": dataclasses.asdict(config),
    }
    text = json.dumps(parts, sort_keys=True)  # config choices are str enums: JSON writes their values
    return hashlib.sha256(text.encode()).hexdigest()


def fit_key(
    runs: pd.DataFrame, config: FitConfig, curves: pd.DataFrame | None = None, allow_unfitted: bool = False
) -> str:
    return flagged(inputs_digest(runs, config, curves), allow_unfitted)


def flagged(digest: str, allow_unfitted: bool) -> str:
    return hashlib.sha256(f"{digest}/allow_unfitted={allow_unfitted}".encode()).hexdigest()


# --- the cache --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FitCache:
    """Reports by key, one JSON file each; the MAX_ENTRIES most recently written or read are kept."""

    directory: Path
    max_entries: int = MAX_ENTRIES

    def file(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> FitReport | None:
        """The report stored under key, or None: missing, unreadable, torn, edited, or another format.
        The checksum catches accidents; a file edited on purpose, checksum and all, is read only if
        its report renders, so at worst it gives a wrong number, as an edited fits/fit.json would."""
        path = self.file(key)
        try:
            stored = json.loads(path.read_text())
            payload = stored["report"]
            if stored["format"] != FORMAT or stored["key"] != key or stored["checksum"] != checksum(payload):
                return None
            report = decode(payload)
            if not isinstance(report, FitReport):
                return None
            json.dumps(report.to_dict())  # a file edited with a matching checksum: wrong types show here
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError, RecursionError):
            return None
        with suppress(OSError):
            os.utime(path)  # read: kept over entries not read since
        return report

    def put(self, key: str, report: FitReport) -> None:
        """Store the report (atomically); on an OSError nothing is stored and nothing fails."""
        payload = encode(report)
        text = json.dumps({"format": FORMAT, "key": key, "checksum": checksum(payload), "report": payload})
        try:
            atomic_write_text(self.file(key), text)
            self.evict(keep=self.file(key))
        except OSError:
            return

    def evict(self, keep: Path) -> None:
        """Remove the oldest entries beyond max_entries, never `keep` (the one just written: file
        times are coarse, so it may look no newer than the others)."""
        others = [p for p in self.directory.glob("*.json") if p != keep]
        others.sort(key=modified, reverse=True)
        for old in others[self.max_entries - 1 :]:
            old.unlink(missing_ok=True)


def modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # removed meanwhile by another process
        return -1


def cached_fit_all(
    runs: pd.DataFrame,
    config: FitConfig,
    curves: pd.DataFrame | None = None,
    allow_unfitted: bool = False,
    cache: FitCache | None = None,
    progress: Progress | None = None,
) -> FitReport:
    """fit_all, or the report a cache holds for the same inputs. A FitError propagates (not cached).
    With allow_unfitted, a report fitted without it is reused too: fit_all only differs by raising.
    progress: fit_all's (a report read from the cache reports nothing)."""
    if cache is None:
        return fit_all(runs, config, curves, allow_unfitted, progress)
    runs = canonical_order(runs, RUN_COLUMNS)
    digest = inputs_digest(runs, config, curves)
    key = flagged(digest, allow_unfitted)
    for candidate in dict.fromkeys([key, flagged(digest, False)]):
        if (report := cache.get(candidate)) is not None:
            return report
    report = fit_all(runs, config, curves, allow_unfitted, progress)
    cache.put(key, report)
    return report
