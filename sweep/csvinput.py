"""Runs from a CSV file (someone else's results): N, loss, and D or C, renamed by options.

Every row is checked before anything is fitted or written; a bad file gives one UserError naming
the column and the first bad lines (line 1 is the header, the first run is on line 2).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sweep.errors import UserError

FLOPS_PER_PARAM_TOKEN = 6  # C = 6 N D: forward and backward passes, N counted as the N column counts it
C_MISMATCH = 2.0  # given both D and C, a row whose C / (6 N D) is beyond this factor is refused
SHOWN = 5  # bad lines named in an error


@dataclass(frozen=True)
class CsvColumns:
    """Which columns hold what ("" = not used), and how many of the highest-loss rows to drop."""

    n_col: str = "N"
    d_col: str = "D"
    c_col: str = "C"
    loss_col: str = "loss"
    budget_col: str = ""
    name_col: str = ""
    drop_highest_loss: int = 0


def read_runs(csv: Path, columns: CsvColumns = CsvColumns()) -> pd.DataFrame:
    """Columns N, D, C, loss (floats), budget and name when asked for; the other of D and C from
    C = 6 N D. Raises UserError at the first problem, before anything is returned."""
    header = _header(csv)
    has = {name for name in (columns.d_col, columns.c_col) if name and name in header}
    for option, name in (("--n-col", columns.n_col), ("--loss-col", columns.loss_col),
                         ("--budget-col", columns.budget_col), ("--name-col", columns.name_col)):  # fmt: skip
        required = option in ("--n-col", "--loss-col")
        if (name or required) and name not in header:
            raise UserError(f"{csv} has no column {name!r} (columns: {', '.join(header)}); name it with {option}")
    if not has:
        raise UserError(f"{csv} has neither {columns.d_col!r} (tokens) nor {columns.c_col!r} (FLOPs); name one with "
                        f"--d-col or --c-col")  # fmt: skip
    numeric = [columns.n_col, columns.loss_col, *sorted(has), *([columns.budget_col] if columns.budget_col else [])]
    raw = _read(csv)
    if len(raw) == 0:
        raise UserError(f"{csv} has a header but no rows")
    values = {name: _positive_numbers(csv, raw[name], name) for name in dict.fromkeys(numeric)}
    n, loss = values[columns.n_col], values[columns.loss_col]
    d = values[columns.d_col] if columns.d_col in has else None
    c = values[columns.c_col] if columns.c_col in has else None
    if d is not None and c is not None:
        _check_flops(csv, n, d, c, columns)
    table = pd.DataFrame({"N": n, "loss": loss})
    with np.errstate(over="ignore", under="ignore"):
        table["D"] = d if d is not None else c / (FLOPS_PER_PARAM_TOKEN * n)
        table["C"] = c if c is not None else FLOPS_PER_PARAM_TOKEN * n * d
    for derived in ("D", "C"):
        _refuse(csv, table[derived], ~(np.isfinite(table[derived]) & (table[derived] > 0)),
                f"{derived} = {'C / 6N' if derived == 'D' else '6 N D'} is zero or beyond floating point")  # fmt: skip
    if columns.budget_col:
        table["budget"] = values[columns.budget_col]
    if columns.name_col:
        table["name"] = raw[columns.name_col].astype(str)
    return _drop_highest_loss(csv, table, columns.drop_highest_loss)


def _header(csv: Path) -> list[str]:
    if not Path(csv).is_file():
        raise UserError(f"CSV file {csv} does not exist")
    return list(_read(csv, rows=0).columns)


def _read(csv: Path, rows: int | None = None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # index_col=False: a first row longer than the header is an error, not an index column
            # that shifts every value one column left; pandas only warns about it.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(csv, nrows=rows, index_col=False, low_memory=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{csv} is empty; it needs a header line and one line per run") from None
    except pd.errors.ParserWarning:
        raise UserError(f"{csv}: the first run has more fields than the header; fix the header or that line") from None
    except (ValueError, OverflowError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{csv} is not a readable CSV file ({reason})") from None


def _positive_numbers(csv: Path, column: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        _refuse(csv, column, np.ones(len(column), bool), f"column {name!r} holds true/false, not numbers")
    values = column
    if not pd.api.types.is_numeric_dtype(column):  # text, or numbers mixed with text, bools or huge integers
        _refuse(csv, column, column.map(lambda v: isinstance(v, bool)), f"column {name!r} holds true/false values")
        values = pd.to_numeric(column, errors="coerce")
        _refuse(csv, column, values.isna() & column.notna(), f"column {name!r} has text where a number belongs")
    _refuse(csv, column, values.isna(), f"column {name!r} has empty or NaN cells")
    values = values.to_numpy(dtype=float)
    _refuse(csv, column, ~(np.isfinite(values) & (values > 0)), f"column {name!r} must be positive and finite")
    return values


def _refuse(csv: Path, column: pd.Series, bad, problem: str, details: str = "") -> None:
    """UserError naming the first bad lines (and their values) when any row is bad."""
    positions = np.flatnonzero(np.asarray(bad))
    if len(positions) == 0:
        return
    shown = positions[:SHOWN]
    lines = ", ".join(f"{p + 2} ({_shown(column.iloc[p])})" for p in shown) + (" ..." if len(positions) > SHOWN else "")
    where = f"{len(positions)} rows, lines {lines}" if len(positions) > 1 else f"line {lines}"
    raise UserError(f"{csv}: {problem} on {where}{details}; fix or drop {'those rows' if len(positions) > 1 else 'it'}")


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _check_flops(csv: Path, n: np.ndarray, d: np.ndarray, c: np.ndarray, columns: CsvColumns) -> None:
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        ratio = pd.Series(c / (FLOPS_PER_PARAM_TOKEN * n * d))
    mismatch = ~((ratio >= 1 / C_MISMATCH) & (ratio <= C_MISMATCH))
    _refuse(csv, ratio.map(lambda r: f"C/6ND = {r:.3g}"), mismatch,
            f"C ({columns.c_col!r}) is not 6 N D within {C_MISMATCH:g}x",
            details=f" (C = 6 N D counts 6 FLOPs per parameter and token, with N as {columns.n_col!r} counts "
                    f"parameters: total or non-embedding); if your C counts FLOPs another way, read only one of the "
                    f"two: --c-col '' or --d-col ''")  # fmt: skip


def _drop_highest_loss(csv: Path, table: pd.DataFrame, count: int) -> pd.DataFrame:
    """Without the `count` highest-loss rows (Epoch drop Chinchilla's 5), in the file's order."""
    if count < 0 or count >= len(table):
        raise UserError(f"--drop-highest-loss {count}: {csv} has {len(table)} rows; drop between 0 and "
                        f"{len(table) - 1}")  # fmt: skip
    if count == 0:
        return table
    return table.drop(index=table["loss"].nlargest(count, keep="first").index).reset_index(drop=True)
