"""The results store: run records in (an idempotent upsert from run directories), DataFrames out.

SQLite in WAL mode, written only from the CLI side. A torn, corrupt or foreign file in a run
directory is reported and skipped; it never stops the rest from being ingested. A run is filed
under its directory's id, and a row once `done` is never downgraded by a later collect: the run
directories are the source of truth, and `rebuild` makes the store again from them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sweep.errors import UserError
from sweep.rundir import CURVE_COLUMNS, RunDir
from sweep.spec import RunSpec, is_run_id

if TYPE_CHECKING:  # the store only reads an Origin's fields; sweep.provenance brings the config with it
    from sweep.provenance import Origin

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, budget REAL, state TEXT NOT NULL, reason TEXT,
    d_model INTEGER, n_layers INTEGER, n_heads INTEGER, seq_len INTEGER, batch_size INTEGER,
    lr REAL, seed INTEGER, steps INTEGER,
    N REAL, N_total REAL, D REAL, C REAL, flops_per_token REAL, loss REAL,
    wall_time_s REAL, tokens_per_s REAL, device TEXT,
    spec_json TEXT NOT NULL, result_json TEXT, updated REAL NOT NULL, role TEXT NOT NULL DEFAULT 'proxy',
    flops_per_s REAL, mfu REAL, device_name TEXT
);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, tokens REAL, flops REAL,
    train_loss REAL, eval_loss REAL, lr REAL, PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS fits (
    fit_id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, approach TEXT NOT NULL,
    counting TEXT NOT NULL, n_points INTEGER, params_json TEXT NOT NULL,
    run_ids_json TEXT, fit_config_json TEXT, code_version TEXT
);
CREATE TABLE IF NOT EXISTS proposals (
    proposal_id TEXT PRIMARY KEY, created REAL NOT NULL, compute REAL NOT NULL, payload_json TEXT NOT NULL,
    run_ids_json TEXT, fit_config_json TEXT, code_version TEXT
);
"""

DISK_NEARLY_FULL = 1 << 20  # bytes free below which a failed SQLite write is blamed on the disk

RESULT_FIELDS = ("N", "N_total", "D", "C", "flops_per_token", "loss", "wall_time_s", "tokens_per_s", "flops_per_s",
                 "mfu", "device", "device_name")  # fmt: skip
ORIGIN_COLUMNS = {"run_ids_json": "TEXT", "fit_config_json": "TEXT", "code_version": "TEXT"}  # see record_fit
# Columns added after stores were first written, by table: a store opened without them gets them.
LATER_COLUMNS = {
    "runs": {"role": "TEXT NOT NULL DEFAULT 'proxy'", "flops_per_s": "REAL", "mfu": "REAL", "device_name": "TEXT"},
    "fits": ORIGIN_COLUMNS,
    "proposals": ORIGIN_COLUMNS,
}


@dataclass
class CollectReport:
    ingested: dict[str, str] = field(default_factory=dict)  # run id -> state
    skipped: dict[str, str] = field(default_factory=dict)  # run id or path -> why


class Store:
    """`create=False` opens an existing store only: reading a mistyped path is an error, not an
    empty store."""

    def __init__(self, path: Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UserError(f"no results store at {self.path}; `sweep collect {self.path.parent}` makes it")
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
        except sqlite3.DatabaseError as exc:
            raise self.error(exc) from None
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            for table, columns in LATER_COLUMNS.items():
                present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for column, kind in columns.items():
                    if column not in present:
                        add_column(self.db, table, column, kind)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise self.error(exc) from None

    def check_writable(self) -> None:
        """Raise (see `error`) now if a write would fail later: a read-only file or directory, a lock."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.rollback()
        except sqlite3.DatabaseError as exc:
            raise self.error(exc) from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        self.close()
        if isinstance(exc, pd.errors.DatabaseError):  # pandas wraps SQLite's errors in its own
            exc = exc.__cause__ or exc
        if isinstance(exc, (sqlite3.DatabaseError, pd.errors.DatabaseError)):
            raise self.error(exc) from None

    def error(self, exc: Exception) -> UserError:
        """What went wrong with the database file, and the way back."""
        if "full" in str(exc) or _disk_nearly_full(self.path.parent):
            return UserError(
                f"{self.path}: {exc}, and the disk is full; free space and run the command again (SQLite rolled "
                "back the write: the store is as it was)"
            )
        if "readonly" in str(exc):
            return UserError(f"{self.path} is read-only ({exc}); make it and its directory writable and run the "
                             "command again")  # fmt: skip
        if "locked" in str(exc):
            return UserError(f"{self.path} is locked by another command ({exc}); run this one again when it is done")
        return UserError(
            f"{self.path} is unreadable ({exc}); `sweep collect --rebuild {self.path.parent}` makes it again from "
            "the run directories (the old file is kept as a .bak)"
        )

    # --- in ------------------------------------------------------------------------------------

    def collect(self, run_dirs: list[RunDir], budgets: dict[str, float]) -> CollectReport:
        report = CollectReport()
        for run_dir in run_dirs:
            run_id = run_dir.run_id
            if not is_run_id(run_id):
                report.skipped[run_id] = "not a run directory (its name is not a run id); left alone"
                continue
            spec, problem = run_dir.checked_spec()
            if problem:
                report.skipped[run_id] = f"{problem}; left out of the store: restore the spec or remove the directory"
                continue
            status = run_dir.read_status()
            state, result, curve = status["state"], None, []
            if state == "done":
                try:
                    result = run_dir.read_result()
                    curve = _read_curve(run_dir)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    report.skipped[run_id] = f"{exc}; left out of the store, rerun or fix it"
                    continue
            with self.db:
                self._upsert(run_id, spec, budgets.get(run_id, spec.budget), state, status.get("reason"), result)
                self.db.executemany(
                    "INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, *(row[c] for c in CURVE_COLUMNS)) for row in curve],
                )
            report.ingested[run_id] = state
        return report

    def _upsert(
        self, run_id: str, spec: RunSpec, budget: float, state: str, reason: str | None, result: dict | None
    ) -> None:
        values = {
            "run_id": run_id, "budget": budget, "state": state, "reason": reason,
            "d_model": spec.d_model, "n_layers": spec.n_layers, "n_heads": spec.n_heads, "seq_len": spec.seq_len,
            "batch_size": spec.batch_size, "lr": spec.lr, "seed": spec.seed, "steps": spec.steps,
            "role": spec.role,
            "spec_json": json.dumps(spec.to_dict(), sort_keys=True),
            "result_json": json.dumps(result, sort_keys=True) if result else None, "updated": time.time(),
        }  # fmt: skip
        values.update({k: (result or {}).get(k) for k in RESULT_FIELDS})
        columns = ", ".join(values)
        updates = ", ".join(f"{k}=excluded.{k}" for k in values if k != "run_id")
        self.db.execute(
            f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(values))}) "
            f"ON CONFLICT(run_id) DO UPDATE SET {updates} WHERE runs.state != 'done' OR excluded.state = 'done'",
            list(values.values()),
        )

    def import_runs(self, runs: pd.DataFrame, source: str, curves: dict[str, list[dict]] | None = None) -> int:
        """Finished runs from elsewhere (columns N, D, C, loss, budget, optional name) as `done` runs,
        with the curve rows (CURVE_COLUMNS) that `curves` holds under a run's name. The id is a hash of
        the row, so importing the same file twice changes nothing. Returns how many were new."""
        before = self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        with self.db:
            for row in runs.to_dict("records"):
                origin = {"imported_from": source, **{k: row[k] for k in ("name", "N", "D", "loss") if k in row}}
                text = json.dumps(origin, sort_keys=True, default=str)
                run_id = "import-" + hashlib.sha256(text.encode()).hexdigest()[:12]
                self.db.execute(
                    "INSERT INTO runs (run_id, budget, state, N, D, C, loss, spec_json, updated) "
                    "VALUES (?, ?, 'done', ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO NOTHING",
                    (run_id, row["budget"], row["N"], row["D"], row["C"], row["loss"], text, time.time()),
                )
                self.db.executemany(
                    "INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, *(point[c] for c in CURVE_COLUMNS)) for point in (curves or {}).get(row.get("name"), [])],
                )
        return self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] - before

    def record_fit(self, approach: str, counting: str, n_points: int, params: dict, origin: Origin) -> None:
        """One approach's fit, with where it came from (ORIGIN_COLUMNS): the runs, fit config and code version."""
        with self.db:
            self.db.execute(
                "INSERT INTO fits (created, approach, counting, n_points, params_json, run_ids_json, fit_config_json, "
                "code_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), approach, counting, n_points, json.dumps(params, sort_keys=True), *_origin_row(origin)),
            )

    def record_proposal(self, proposal_id: str, compute: float, payload: dict, origin: Origin) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO proposals (proposal_id, created, compute, payload_json, run_ids_json, "
                "fit_config_json, code_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (proposal_id, time.time(), compute, json.dumps(payload, sort_keys=True), *_origin_row(origin)),
            )

    # --- out -----------------------------------------------------------------------------------

    def runs(self, state: str | None = None) -> pd.DataFrame:
        query, args = "SELECT * FROM runs", ()
        if state:
            query, args = query + " WHERE state = ?", (state,)
        return pd.read_sql_query(query + " ORDER BY budget, N", self.db, params=args)

    def curves(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM curves ORDER BY run_id, step", self.db)

    def fits(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM fits ORDER BY fit_id", self.db)

    def proposals(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM proposals ORDER BY created", self.db)


def _origin_row(origin: Origin) -> tuple[str, str, str]:
    """An origin as the values of ORIGIN_COLUMNS, in their order."""
    return json.dumps(origin.run_ids), json.dumps(origin.fit_config, sort_keys=True), origin.code_version


def add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    """ALTER TABLE ... ADD COLUMN, where another command opening the same old store at once may have added it."""
    try:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


def _disk_nearly_full(directory: Path) -> bool:
    try:
        return shutil.disk_usage(directory).free < DISK_NEARLY_FULL
    except OSError:
        return False


def _read_curve(run_dir: RunDir) -> list[dict[str, float]]:
    if not run_dir.curve_file.exists():
        return []
    with run_dir.curve_file.open() as handle:
        rows = list(csv.DictReader(handle))
    if rows and set(CURVE_COLUMNS) - set(rows[0]):
        raise ValueError("curve.csv lacks columns " + ", ".join(sorted(set(CURVE_COLUMNS) - set(rows[0]))))
    return [{c: float(row[c]) for c in CURVE_COLUMNS} for row in rows]
