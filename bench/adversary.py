"""Adversarial battery: hostile input to the real CLI, counted per category.

    .venv/bin/python bench/adversary.py [--workers 2] [--only usage,csv]

Every case runs `python -m sweep.cli ...` (WANDB_MODE=disabled, cwd = the repository) in its own
temporary directory, with the no-op trainer and small presets, and is classified as:

    handled    exit 2 and exactly one stderr line, starting `error: `, no traceback
    ok         exit 0 and, where it can be checked, a correct result
    traceback  a Traceback on stderr, or exit 1
    other      anything else: exit 2 with several lines, a hang past the timeout, an exit 0 whose
               result is wrong, files that existed before a refused command changed, ...

Runs trained twice (a status history with 2+ `running` entries, or a result.json rewritten) and
runs lost (planned, not done after a relaunch) are counted where a case can cause them.
Prints a table and writes bench/results/adversary.json with a record per case. Not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sweep.config import Config  # noqa: E402

RESULTS = REPO / "bench" / "results"
TIMEOUT = 60
BASE = ["sweep=smoke", "launcher.trainer=noop", "fit.bootstrap=10"]
FIT = ["fit.bootstrap=10"]
TRAIN = ["train", "launcher.trainer=noop", "run.d_model=16", "run.n_layers=1", "run.tokens=1e4"]  # a tiny run
IS_ROOT = os.geteuid() == 0
COMMANDS = ("plan", "launch", "status", "wait", "cancel", "collect", "fit", "backtest", "import", "propose",
            "train", "run")  # fmt: skip
DIR_COMMANDS = ("launch", "status", "wait", "cancel", "collect", "fit", "backtest", "propose")
LONG_COMPONENT = "c" * 300


# --- running the CLI -------------------------------------------------------------------------------


@dataclass
class Proc:
    rc: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    command: str


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled"}


def argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "sweep.cli", *args]


def cli(*args: str, timeout: float = TIMEOUT) -> Proc:
    command = "sweep " + " ".join(a if len(a) < 120 else a[:60] + f"...({len(a)} chars)" for a in args)
    try:
        p = subprocess.run(argv(list(args)), capture_output=True, text=True, cwd=REPO, env=env(), timeout=timeout,
                           errors="replace")  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        return Proc(None, str(exc.stdout or ""), str(exc.stderr or ""), command)
    return Proc(p.returncode, p.stdout, p.stderr, command)


def must(*args: str) -> str:
    proc = cli(*args)
    if proc.rc != 0:
        raise SystemExit(f"fixture failed: {proc.command}\n{proc.stderr}")
    return proc.stdout


EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b")


def exception_line(stderr: list[str]) -> str:
    """The exception a traceback ends with, its wrapped lines joined (rich wraps them)."""
    for i in range(len(stderr) - 1, -1, -1):
        if EXCEPTION.match(stderr[i]):
            return " ".join(line.strip() for line in stderr[i:])
    return stderr[-1] if stderr else ""


def classify(proc: Proc) -> str:
    if proc.rc is None:
        return "other"
    if "Traceback" in proc.stderr or proc.rc == 1:
        return "traceback"
    lines = proc.stderr.strip().splitlines()
    if proc.rc == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        return "handled"
    return "ok" if proc.rc == 0 else "other"


# --- cases -----------------------------------------------------------------------------------------


@dataclass
class Verdict:
    problem: str = ""  # non-empty: the case is `other`, whatever the exit code said
    twice: int = 0
    lost: int = 0


@dataclass
class Case:
    """`args` may hold `{t}`, the case's temporary directory. `setup` prepares it and returns a
    state for `check`; `runner` replaces the single CLI call (concurrency)."""

    category: str
    name: str
    args: list[str] = field(default_factory=list)
    setup: Callable[[Path], Any] = lambda t: None
    check: Callable[[Path, Proc, Any], Verdict] | None = None
    runner: Callable[[Path], Proc] | None = None
    timeout: float = TIMEOUT


def run_case(case: Case, scratch: Path) -> dict:
    t = Path(tempfile.mkdtemp(prefix="case-", dir=scratch))
    started = time.perf_counter()
    state = case.setup(t)
    proc = case.runner(t) if case.runner else cli(*(a.replace("{t}", str(t)) for a in case.args), timeout=case.timeout)
    outcome = classify(proc)
    verdict = case.check(t, proc, state) if case.check else Verdict()
    if verdict.problem and outcome != "traceback":
        outcome = "other"
    stderr = proc.stderr.strip().splitlines()
    first = next((line for line in stderr if "Error" in line or "error" in line), stderr[0] if stderr else "")
    if proc.rc is None:
        first = f"timed out after {case.timeout:.0f} s"
    elif outcome == "traceback":
        first = exception_line(stderr) or f"exit {proc.rc}"
    return {
        "category": case.category, "case": case.name, "command": proc.command.replace(str(t), "$T"),
        "outcome": outcome, "rc": proc.rc, "first_stderr_line": first.replace(str(t), "$T")[:300],
        "problem": verdict.problem, "runs_trained_twice": verdict.twice, "runs_lost": verdict.lost,
        "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


# --- file state ------------------------------------------------------------------------------------

IGNORED = ("lock", ".lock", "results.db-wal", "results.db-shm")


def snapshot(root: Path) -> dict[str, str]:
    """Content hash of every file under `root`, lock files and SQLite's side files aside."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in IGNORED
    }


def changed(before: dict[str, str], root: Path) -> str:
    after = snapshot(root)
    moved = {digest: name for name, digest in after.items()}
    bad = [
        name + (f" (moved to {moved[digest]})" if digest in moved else "")
        for name, digest in before.items()
        if after.get(name) != digest
    ]
    return f"existing files changed or removed: {', '.join(bad[:4])}" if bad else ""


def unchanged_when_refused(t: Path, proc: Proc, before: tuple[Path, dict[str, str]]) -> Verdict:
    root, digests = before
    return Verdict(changed(digests, root) if proc.rc != 0 else "")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def running_entries(run: Path) -> int:
    status = read_json(run / "status.json")
    history = status.get("history", []) if isinstance(status, dict) else []
    return sum(1 for h in history if isinstance(h, dict) and h.get("state") == "running")


def result_stamp(run: Path) -> tuple[int, str] | None:
    path = run / "result.json"
    if not path.is_file():
        return None
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def is_done(run: Path) -> bool:
    result = read_json(run / "result.json")
    return isinstance(result, dict) and "loss" in result


@dataclass
class RunLedger:
    """What the runs looked like before a relaunch, to count runs trained twice or lost after it."""

    sweep: Path
    planned: list[str]
    excluded: set[str] = field(default_factory=set)  # runs the case damaged on purpose
    stamps: dict[str, tuple[int, str] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stamps = {r: result_stamp(self.sweep / "runs" / r) for r in self.planned}

    def twice(self, rewrites_count: bool = True) -> int:
        count = 0
        for run_id in set(self.planned) - self.excluded:
            run = self.sweep / "runs" / run_id
            before = self.stamps[run_id]
            rewritten = rewrites_count and before is not None and result_stamp(run) != before
            count += running_entries(run) >= 2 or rewritten
        return count

    def lost(self) -> int:
        return sum(not is_done(self.sweep / "runs" / r) for r in set(self.planned) - self.excluded)


# --- fixtures ---------------------------------------------------------------------------------------


@dataclass
class Fixtures:
    root: Path
    collected: Path  # planned, trained (debug executor, noop), collected, fitted
    planned: Path  # planned only, with BASE
    planned_local: Path  # planned only, local queue with its own slots directory
    real: Path  # one run, the real trainer, planned only
    csv: Path
    imported: Path  # a sweep made by `sweep import csv`
    readonly: Path | None  # a read-only directory holding a copy of `collected` (None: not possible)
    planned_ids: list[str] = field(default_factory=list)


def valid_csv_text() -> str:
    """15 runs in 3 budgets from Hoffmann et al.'s law: a CSV every command accepts."""
    rows = ["N,D,loss"]
    for c in (1e18, 1e19, 1e20):
        for k in range(5):
            n = (c / 120) ** 0.5 * 3 ** (k - 2)
            d = c / (6 * n)
            rows.append(f"{n:.6g},{d:.6g},{1.69 + 406.4 / n**0.34 + 410.7 / d**0.28:.6g}")
    return "\n".join(rows) + "\n"


def build_fixtures(root: Path) -> Fixtures:
    collected, planned, local, real = (root / n for n in ("collected", "planned", "local", "real"))
    must("plan", *BASE, "--out", str(collected), "--json")
    must("launch", str(collected), "--executor", "debug")
    must("collect", str(collected))
    must("fit", str(collected), *FIT)
    must("plan", *BASE, "--out", str(planned), "--json")
    must("plan", *BASE, f"launcher.slots_dir={root / 'slots'}", "launcher.parallel=2", "--out", str(local))
    must("plan", "sweep=smoke", "sweep.budgets=[3e10]", "sweep.sizes_per_budget=1", "train.eval_points=2",
         "--out", str(real))  # fmt: skip
    csv = root / "runs.csv"
    csv.write_text(valid_csv_text())
    imported = root / "imported"
    must("import", str(csv), "--into", str(imported))
    fixtures = Fixtures(root, collected, planned, local, real, csv, imported, readonly_copy(root, collected))
    fixtures.planned_ids = [r["run_id"] for r in json.loads((collected / "plan.json").read_text())["runs"]]
    return fixtures


MOUNTS: list[Path] = []


def mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if ok.returncode == 0:
        MOUNTS.append(where)
    return ok.returncode == 0


def unmount_all() -> None:
    for where in reversed(MOUNTS):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
    MOUNTS.clear()


def readonly_copy(root: Path, sweep: Path) -> Path | None:
    """A read-only directory holding a copy of `sweep`: a read-only tmpfs as root (root ignores
    permission bits), chmod 555 otherwise."""
    where = root / "ro"
    if IS_ROOT:
        if not mount_tmpfs(where, "8m"):
            return None
        shutil.copytree(sweep, where / "sweep", symlinks=True)
        if subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True).returncode != 0:
            return None
        return where
    shutil.copytree(sweep, where / "sweep", symlinks=True)
    for p in [where, *where.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    return where


def copy_of(src: Path, t: Path, name: str = "s") -> Path:
    dst = t / name
    shutil.copytree(src, dst, symlinks=True)
    return dst


# --- 1. usage ---------------------------------------------------------------------------------------


def usage_cases(fx: Fixtures) -> list[Case]:
    def on_sweep(name: str, *args: str) -> Case:
        return Case("usage", name, [a.replace("DIR", "{t}/s") for a in args], lambda t: copy_of(fx.collected, t))

    cases = [Case("usage", f"unknown command {c!r}", [c]) for c in ("frob", "Plan", "")]
    cases += [Case("usage", f"{c}: unknown option", [c, "--bogus"]) for c in COMMANDS]
    cases += [Case("usage", f"{c}: no arguments", [c]) for c in COMMANDS if c not in ("plan", "train", "run")]
    cases += [Case("usage", "import: no --into", ["import", str(fx.csv)])]
    cases += [on_sweep(f"propose --compute {v}", "propose", "DIR", "--compute", v, *FIT)
              for v in ("abc", "-1", "0", "nan", "inf", "")]  # fmt: skip
    cases += [on_sweep(f"backtest --holdout-top {v}", "backtest", "DIR", "--holdout-top", v, *FIT)
              for v in ("x", "-1", "0", "99", "1.5")]  # fmt: skip
    cases += [on_sweep("launch --executor cloud", "launch", "DIR", "--executor", "cloud")]
    cases += [Case("usage", "run --executor cloud", ["run", *BASE, "--executor", "cloud", "--out", "{t}/s"])]
    cases += [on_sweep(f"fit --drop-highest-loss {v}", "fit", "DIR", "--drop-highest-loss", v) for v in ("-1", "x")]
    cases += [
        on_sweep("--json before the command", "--json", "status", "DIR"),
        on_sweep("--json twice", "status", "--json", "--json", "DIR"),
        on_sweep("--json=1", "status", "DIR", "--json=1"),
        Case("usage", "fit --json without a source", ["fit", "--json"]),
        Case(
            "usage",
            "--json between overrides",
            ["plan", "sweep=smoke", "--json", "launcher.trainer=noop", "--out", "{t}/s"],
            check=json_document,
        ),  # fmt: skip
        on_sweep("--json as an override", "fit", "DIR", "--", "--json"),
    ]
    return cases


def json_document(t: Path, proc: Proc, state: Any) -> Verdict:
    ok = proc.rc != 0 or read_json_text(proc.stdout) is not None
    return Verdict("" if ok else "--json printed something that is not one JSON document")


# --- 2. config values -------------------------------------------------------------------------------

BAD_VALUES = ("nan", "inf", "-1", "0", "1e300", "abc", "-inf", "99999999999999999999", "''")


def config_keys() -> list[tuple[str, Any]]:
    """(dotted key, type) of every field of Config's sections, nested ones included; run.* aside
    (it describes one `sweep train` run: plan does not read it)."""
    keys: list[tuple[str, Any]] = []

    def walk(prefix: str, cls: type) -> None:
        for name, kind in typing.get_type_hints(cls).items():
            if dataclasses.is_dataclass(kind):
                walk(f"{prefix}{name}.", kind)
            elif f"{prefix}{name}".split(".")[0] != "run":
                keys.append((f"{prefix}{name}", kind))

    walk("", Config)
    return keys


def plan_case(fx: Fixtures, name: str, overrides: list[str], existing: bool, refuse: bool = False) -> Case:
    """Plan with `overrides` into a new directory, or into a copy of a planned sweep whose files must
    stay as they were if the plan is refused. An exit 0 must give a plan of at least one run; with
    `refuse` (an unknown key: README promises an error, not a silent no-op), no exit 0 is right."""

    def setup(t: Path) -> tuple[Path, dict[str, str]]:
        out = copy_of(fx.planned, t) if existing else t / "s"
        return out, snapshot(out)

    def check(t: Path, proc: Proc, before: tuple[Path, dict[str, str]]) -> Verdict:
        if proc.rc == 0 and refuse:
            return Verdict("exit 0: the override was accepted, not refused")
        if proc.rc == 0:
            payload = read_json_text(proc.stdout)
            if not (isinstance(payload, dict) and len(payload.get("runs", [])) >= 1):
                return Verdict("exit 0 but `plan --json` gave no runs")
        return unchanged_when_refused(t, proc, before)

    where = "into an existing sweep" if existing else "new dir"
    return Case("config", f"{name} ({where})", ["plan", *BASE, *overrides, "--out", "{t}/s", "--json"], setup, check)


def read_json_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def config_cases(fx: Fixtures) -> list[Case]:
    cases = []
    numeric = [(k, kind) for k, kind in config_keys() if kind in (int, float)]
    for i, (key, _) in enumerate(numeric):
        value = BAD_VALUES[i % len(BAD_VALUES)]
        cases.append(plan_case(fx, f"{key}={value}", [f"{key}={value}"], existing=i % 2 == 1))
    # Strings with a fixed set of choices (the others, like a SLURM partition, are free text), and booleans.
    closed = [
        (k, kind) for k, kind in config_keys() if kind is bool or (isinstance(kind, type) and issubclass(kind, Enum))
    ]
    for i, (key, kind) in enumerate(closed):
        value = "maybe" if kind is bool else "bogus"
        cases.append(plan_case(fx, f"{key}={value}", [f"{key}={value}"], existing=i % 2 == 1))
    unknown = {"unknown key": ["sweep.foo=1"], "+sweep.foo": ["+sweep.foo=1"], "++foo": ["++foo=1"]}
    cases += [plan_case(fx, name, o, existing=i % 2 == 1, refuse=True) for i, (name, o) in enumerate(unknown.items())]
    extras = {
        "model=null": ["model=null"],
        "unset env interpolation": ["sweep.kind=${oc.env:ADVERSARY_UNSET}"],
        "self-referencing interpolation": ["sweep.size_span=${sweep.size_span}"],
        "unknown preset": ["sweep=nonexistent"],
        "delete a group": ["~sweep"],
        "empty budgets": ["sweep.budgets=[]"],
        "empty seeds": ["sweep.seeds=[]"],
        "empty aspect ratios (widthdepth)": ["sweep.kind=widthdepth", "sweep.aspect_ratios=[]"],
        "empty forms": ["fit.forms=[]"],
        "forms without chinchilla": ["fit.forms=[kaplan_n]"],
        "negative gpu": ["launcher.gpus=[-1]"],
        "budget too small": ["sweep.budgets=[1]"],
        "budget 1e30": ["sweep.budgets=[1e30]"],
        "budget text": ["sweep.budgets=[abc]"],
        "budget nan": ["sweep.budgets=[nan]"],
        "budgets a string": ["sweep.budgets=1e11"],
        "data.path missing": ["data.path=/nonexistent/corpus"],
        "tokens dir without bins": ["data=tokens", "data.path=/tmp"],
        "hydra key": ["hydra.run.dir=x"],
        "bare =": ["="],
        "duplicate budgets": ["sweep.budgets=[3e10,3e10]"],
    }
    cases += [plan_case(fx, name, o, existing=i % 2 == 1) for i, (name, o) in enumerate(extras.items())]
    return cases


# --- 3. YAML config files ---------------------------------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def yaml_cases(fx: Fixtures) -> list[Case]:
    """`sweep train --config FILE` (plan takes no config file). The hostile values sit in a complete
    config (the fixture's, noop trainer) where they need one, so that they are what gets refused."""
    marker = "PWNED"
    full = (fx.collected / "config.yaml").read_text()
    one_run = full.replace("  d_model: 0\n  n_layers: 0\n  n_heads: 0\n  tokens: 0.0\n",
                           "  d_model: 16\n  n_layers: 1\n  n_heads: 1\n  tokens: 10000.0\n")  # fmt: skip
    texts: dict[str, str | bytes] = {
        "valid one-run config (control)": one_run,
        "python tag": f'run: !!python/object/apply:os.system ["touch {{t}}/{marker}"]\n',
        "billion laughs": LAUGHS,
        "garbage text": "::: [[[ }}} not: yaml: at: all\n\t- x",
        "binary garbage": bytes(range(256)) * 8,
        "empty file": "",
        "top-level list": "- 1\n- 2\n",
        "unknown section": one_run + "bogus_section:\n  x: 1\n",
        "wrong type": one_run.replace("  d_model: 16", "  d_model: wide"),
        "not UTF-8": "run:\n  role: \xff\xfe\n".encode("latin-1"),
        "huge scalar": "run:\n  role: " + "x" * 5_000_000 + "\n",
    }

    def write(path: Path, content: str | bytes, t: Path) -> None:
        path.write_bytes(content if isinstance(content, bytes) else content.replace("{t}", str(t)).encode())

    def yaml_case(name: str, content: str | bytes) -> Case:
        return Case("yaml", name, ["train", "--config", "{t}/c.yaml", "--out", "{t}/o"],
                    lambda t: write(t / "c.yaml", content, t), no_marker(marker), timeout=20)  # fmt: skip

    cases = [yaml_case(name, content) for name, content in texts.items()]

    def beside(t: Path) -> None:  # a valid c.yml beside a hostile c.yaml: the one named must be read
        write(t / "c.yml", one_run, t)
        write(t / "c.yaml", texts["python tag"], t)

    def read_the_named_file(t: Path, proc: Proc, state: Any) -> Verdict:
        wrong = "c.yaml" in proc.stderr
        return Verdict(
            "read c.yaml, not the c.yml it was given" if wrong else no_marker(marker)(t, proc, state).problem
        )

    cases += [
        Case(
            "yaml",
            ".yml beside a .yaml",
            ["train", "--config", "{t}/c.yml", "--out", "{t}/o"],
            beside,
            read_the_named_file,
        ),  # fmt: skip
        Case("yaml", "a directory", ["train", "--config", "{t}", "--out", "{t}/o"]),
        Case("yaml", "a missing file", ["train", "--config", "{t}/none.yaml", "--out", "{t}/o"]),
    ]
    return cases


def no_marker(marker: str) -> Callable[[Path, Proc, Any], Verdict]:
    def check(t: Path, proc: Proc, state: Any) -> Verdict:
        return Verdict(f"payload executed: {marker} exists" if (t / marker).exists() else "")

    return check


# --- 4. CSV inputs ----------------------------------------------------------------------------------


def csv_variants() -> dict[str, tuple[str | bytes, list[str]]]:
    good = valid_csv_text()
    lines = good.splitlines()
    header, rows = lines[0], lines[1:]

    def with_row(row: str) -> str:
        return "\n".join([header, row, *rows[1:]]) + "\n"

    n, d, loss = rows[0].split(",")
    with_c = "N,D,C,loss\n" + "".join(f"{r.split(',')[0]},{r.split(',')[1]},"
                                      f"{60 * float(r.split(',')[0]) * float(r.split(',')[1]):.6g},"
                                      f"{r.split(',')[2]}\n" for r in rows)  # fmt: skip
    return {
        "valid (control)": (good, []),
        "text in N": (with_row(f"many,{d},{loss}"), []),
        "boolean loss": (with_row(f"{n},{d},true"), []),
        "empty file": ("", []),
        "header only": (header + "\n", []),
        "negative N": (with_row(f"-{n},{d},{loss}"), []),
        "zero D": (with_row(f"{n},0,{loss}"), []),
        "inf loss": (with_row(f"{n},{d},inf"), []),
        "nan loss": (with_row(f"{n},{d},nan"), []),
        "empty cell": (with_row(f"{n},,{loss}"), []),
        "1e308 overflow": (with_row(f"1e308,1e308,{loss}"), []),
        "wrong column names": (good.replace("N,D,loss", "params,tokens,final"), []),
        "C not 6ND": (with_c, []),
        "duplicate columns": (good.replace("N,D,loss", "N,N,loss"), []),
        "binary garbage": (bytes(range(256)) * 64, []),
        "very long line": (with_row(f"{n},{d},{loss}," + "9" * 2_000_000), []),
        "semicolons": (good.replace(",", ";"), []),
        "missing --n-col": (good, ["--n-col", "Model Size"]),
    }


BACKTESTED = ("valid (control)", "text in N", "empty file", "header only", "C not 6ND", "binary garbage")


def csv_cases(fx: Fixtures) -> list[Case]:
    """Every variant through fit and import; a few through backtest, which reads CSVs the same way."""
    cases = []
    for name, (content, options) in csv_variants().items():

        def setup(t: Path, content: str | bytes = content) -> tuple[Path, dict[str, str]]:
            path = t / "in.csv"
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            target = copy_of(fx.imported, t)
            return target, snapshot(target)

        backtest = ["backtest", "{t}/in.csv", "--holdout-top", "1", *options, *FIT]
        cases += [Case("csv", f"backtest: {name}", backtest, setup)] if name in BACKTESTED else []
        cases += [
            Case("csv", f"fit: {name}", ["fit", "{t}/in.csv", *options, *FIT], setup),
            Case(
                "csv",
                f"import: {name}",
                ["import", "{t}/in.csv", "--into", "{t}/s", *options],
                setup,
                unchanged_when_refused,
            ),  # fmt: skip
        ]
    return cases


# --- 5. paths ---------------------------------------------------------------------------------------


def path_cases(fx: Fixtures) -> list[Case]:
    def a_file(t: Path) -> None:
        (t / "f").write_text("not a sweep\n")

    def foreign_dir(t: Path) -> tuple[Path, dict[str, str]]:
        (t / "s").mkdir()
        (t / "s" / "notes.txt").write_text("mine\n")
        return t / "s", snapshot(t / "s")

    long_path = "{t}/" + "/".join(["d" * 200] * 22)  # > 4096 characters
    bad_dirs = {"nonexistent": "{t}/none", "a file": "{t}/f"}
    rarer = {"300-char component": f"{{t}}/{LONG_COMPONENT}", "empty directory": "{t}"}  # for a few commands
    cases = []
    for command in DIR_COMMANDS:
        extra = FIT if command in ("fit", "backtest", "propose") else []
        more = rarer if command in ("status", "launch", "collect", "propose") else {}
        for name, path in {**bad_dirs, **more}.items():
            cases.append(Case("paths", f"{command}: {name}", [command, path, *extra], a_file))
    cases += [Case("paths", f"{c}: path > 4096 chars", [c, long_path]) for c in ("status", "launch", "collect")]
    outs = {"a file": "{t}/f", "300-char component": f"{{t}}/{LONG_COMPONENT}/s", "path > 4096 chars": long_path,
            "/dev/null": "/dev/null"}  # fmt: skip
    cases += [Case("paths", f"plan --out {name}", ["plan", *BASE, "--out", p], a_file) for name, p in outs.items()]
    cases += [Case("paths", f"import --into {name}", ["import", str(fx.csv), "--into", outs[name]], a_file)
              for name in ("a file", "300-char component")]  # fmt: skip
    cases += [
        Case(
            "paths",
            "plan --out a foreign directory",
            ["plan", *BASE, "--out", "{t}/s"],
            foreign_dir,
            unchanged_when_refused,
        ),  # fmt: skip
        Case(
            "paths",
            "import --into a foreign directory",
            ["import", str(fx.csv), "--into", "{t}/s"],
            foreign_dir,
            unchanged_when_refused,
        ),  # fmt: skip
        Case(
            "paths",
            "train --out a file",
            [*TRAIN, "--out", "{t}/f"],
            a_file,
        ),  # fmt: skip
        Case("paths", "fit a directory named .csv", ["fit", "{t}/x.csv"], lambda t: (t / "x.csv").mkdir()),
    ]
    if fx.readonly is None:
        return cases
    ro, sweep = fx.readonly, str(fx.readonly / "sweep")
    for command, extra in (("status", []), ("collect", []), ("launch", ["--executor", "debug"]), ("fit", FIT),
                           ("propose", FIT), ("cancel", [])):  # fmt: skip
        cases.append(Case("paths", f"{command}: read-only sweep", [command, sweep, *extra], lambda t: None,
                          readonly_intact(fx)))  # fmt: skip
    cases += [
        Case("paths", "plan --out under a read-only dir", ["plan", *BASE, "--out", str(ro / "new")]),
        Case("paths", "import --into under a read-only dir", ["import", str(fx.csv), "--into", str(ro / "new")]),
        Case(
            "paths",
            "train --out under a read-only dir",
            [*TRAIN, "--out", str(ro / "new")],
        ),  # fmt: skip
    ]
    return cases


def readonly_intact(fx: Fixtures) -> Callable[[Path, Proc, Any], Verdict]:
    expected = snapshot(fx.collected)

    def check(t: Path, proc: Proc, state: Any) -> Verdict:
        return Verdict(changed(expected, fx.readonly / "sweep"))  # type: ignore[operator]

    return check


# --- 6. corrupted state -----------------------------------------------------------------------------


def first_run(sweep: Path, k: int = 0) -> Path:
    return sorted((sweep / "runs").iterdir())[k]


def truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corruptions() -> dict[str, Callable[[Path], set[str]]]:
    """Each damages a copy of a collected sweep and returns the run ids it damaged on purpose."""

    def garbage(rel: str) -> Callable[[Path], set[str]]:
        def damage(s: Path) -> set[str]:
            (s / rel).write_bytes(b"\x00garbage\xff" * 100)
            return set()

        return damage

    def half(rel: str) -> Callable[[Path], set[str]]:
        def damage(s: Path) -> set[str]:
            truncate_half(s / rel)
            return set()

        return damage

    def traversal(s: Path) -> set[str]:
        plan = json.loads((s / "plan.json").read_text())
        plan["runs"][0]["run_id"] = "../../x"
        (s / "plan.json").write_text(json.dumps(plan))
        return set()

    def in_run(filename: str, action: Callable[[Path], None]) -> Callable[[Path], set[str]]:
        def damage(s: Path) -> set[str]:
            run = first_run(s)
            action(run / filename)
            return {run.name}

        return damage

    def torn_status(s: Path) -> set[str]:  # result.json stays valid: the run is done, whatever status says
        truncate_half(first_run(s) / "status.json")
        return set()

    def status_running(s: Path) -> set[str]:
        path = first_run(s) / "status.json"
        status = json.loads(path.read_text())
        status["state"] = "running"
        path.write_text(json.dumps(status))
        return set()

    def copied_spec(s: Path) -> set[str]:
        shutil.copy(first_run(s, 1) / "spec.json", first_run(s) / "spec.json")
        return {first_run(s).name}

    def foreign_dir(s: Path) -> set[str]:
        (s / "runs" / "notarun").mkdir()
        (s / "runs" / "notarun" / "status.json").write_text("{}")
        return set()

    def db_is_dir(s: Path) -> set[str]:
        (s / "results.db").unlink()
        (s / "results.db").mkdir()
        return set()

    return {
        "garbage results.db": garbage("results.db"),
        "half-truncated results.db": half("results.db"),
        "results.db is a directory": db_is_dir,
        "garbage plan.json": garbage("plan.json"),
        "plan.json with ../../x": traversal,
        "garbage config.yaml": garbage("config.yaml"),
        "half-truncated config.yaml": half("config.yaml"),
        "torn status.json on a done run": torn_status,
        "status running on a done run": status_running,
        "torn result.json": in_run("result.json", truncate_half),
        "spec.json copied from another run": copied_spec,
        "missing spec.json": in_run("spec.json", Path.unlink),
        "foreign directory in runs/": foreign_dir,
        "garbage fits/fit.json": garbage("fits/fit.json"),
    }


def corrupted_cases(fx: Fixtures) -> list[Case]:
    commands = {"status": ["status", "{t}/s"], "launch": ["launch", "{t}/s", "--executor", "debug"],
                "collect": ["collect", "{t}/s"], "fit": ["fit", "{t}/s", *FIT],
                "propose": ["propose", "{t}/s", *FIT]}  # fmt: skip
    cases = []
    for name, damage in corruptions().items():

        def setup(t: Path, damage: Callable[[Path], set[str]] = damage) -> RunLedger:
            sweep = copy_of(fx.collected, t)
            return RunLedger(sweep, fx.planned_ids, damage(sweep))

        def relaunched(t: Path, proc: Proc, ledger: RunLedger) -> Verdict:
            if proc.rc != 0:  # refused: nothing may have been trained either
                return Verdict(twice=ledger.twice())
            return Verdict(twice=ledger.twice(), lost=ledger.lost())

        # fit and propose read the store, the plan and the config, not the run directories
        whole_sweep = any(f in name for f in ("results.db", "plan.json", "config.yaml", "fit.json"))
        for command, args in commands.items():
            if command in ("fit", "propose") and not whole_sweep:
                continue
            check = relaunched if command == "launch" else None
            cases.append(Case("corrupted", f"{command}: {name}", args, setup, check))
    cases += pickle_cases(fx)
    return cases


class Payload:
    """Unpickling this runs `touch MARKER`: it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def pickle_cases(fx: Fixtures) -> list[Case]:
    def setup(t: Path) -> Path:
        sweep = copy_of(fx.real, t)
        run = first_run(sweep)
        (run / "checkpoint.pt").write_bytes(pickle.dumps(Payload(t / "PWNED")))
        return run

    def check(t: Path, proc: Proc, run: Path) -> Verdict:
        if (t / "PWNED").exists():
            return Verdict("the planted pickle was executed")
        state = (read_json(run / "status.json") or {}).get("state")
        return Verdict("" if state == "failed" or proc.rc == 2 else f"run state {state!r}, expected failed")

    def status_check(t: Path, proc: Proc, run: Path) -> Verdict:
        return Verdict("the planted pickle was executed" if (t / "PWNED").exists() else "")

    return [
        Case(
            "corrupted",
            "launch: planted pickle checkpoint.pt (real trainer)",
            ["launch", "{t}/s", "--executor", "debug"],
            setup,
            check,
        ),  # fmt: skip
        Case("corrupted", "status: planted pickle checkpoint.pt", ["status", "{t}/s"], setup, status_check),
    ]


# --- 7. disk full -----------------------------------------------------------------------------------


def fill(mount: Path) -> None:
    """Write until the filesystem is full: big blocks, then small ones for the last bytes."""
    for name, block in (("filler", 65536), ("filler2", 512)):
        with contextlib.suppress(OSError), open(mount / name, "wb") as f:
            while True:
                f.write(b"\0" * block)
                f.flush()


def disk_cases(fx: Fixtures) -> list[Case]:
    commands = {
        "plan a new sweep": ["plan", *BASE, "--out", "{t}/m/new"],
        "re-plan the planned sweep": ["plan", *BASE, "--out", "{t}/m/planned"],
        "launch (debug)": ["launch", "{t}/m/planned", "--executor", "debug"],
        "launch (local queue)": ["launch", "{t}/m/local"],
        "status": ["status", "{t}/m/collected"],
        "collect": ["collect", "{t}/m/collected"],
        "collect --rebuild": ["collect", "--rebuild", "{t}/m/collected"],
        "fit": ["fit", "{t}/m/collected", *FIT],
        "propose": ["propose", "{t}/m/collected", *FIT],
        "import into a new dir": ["import", str(fx.csv), "--into", "{t}/m/imp"],
        "import into the sweep": ["import", str(fx.csv), "--into", "{t}/m/collected"],
        "train": [*TRAIN, "--out", "{t}/m/collected"],  # fmt: skip
    }

    def setup(t: Path) -> tuple[Path, dict[str, str]]:
        mount = t / "m"
        if not mount_tmpfs(mount, "2m"):
            raise RuntimeError(f"mount -t tmpfs at {mount} failed")
        for name, src in (("collected", fx.collected), ("planned", fx.planned), ("local", fx.planned_local)):
            shutil.copytree(src, mount / name, symlinks=True)
        fill(mount)
        digests = {k: v for k, v in snapshot(mount).items() if not k.startswith("filler")}
        return mount, digests

    def check(t: Path, proc: Proc, before: tuple[Path, dict[str, str]]) -> Verdict:
        mount, digests = before
        return Verdict(changed(digests, mount))

    return [Case("disk full", name, args, setup, check) for name, args in commands.items()]


def can_mount() -> bool:
    if not IS_ROOT:
        return False
    where = Path(tempfile.mkdtemp(prefix="adv-mount-"))
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True)
    subprocess.run(["umount", str(where)], capture_output=True)
    where.rmdir()
    return ok.returncode == 0


# --- 8. concurrency ---------------------------------------------------------------------------------


def popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(argv(list(args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=env(), errors="replace")  # fmt: skip


def together(procs: list[subprocess.Popen], command: str) -> Proc:
    """Wait for every process; the first failure's exit code (0 if none), every stderr."""
    rcs, errs, outs = [], [], []
    for p in procs:
        try:
            out, err = p.communicate(timeout=TIMEOUT)
            rcs.append(p.returncode)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            rcs.append(None)
        outs.append(out)
        errs.append(err)
    rc = None if None in rcs else next((r for r in rcs if r != 0), 0)
    return Proc(rc, "".join(outs), "".join(errs), command)


def then_wait(sweep: Path, first: Proc) -> Proc:
    """After the concurrent commands: wait for the queue; a failed wait is the case's outcome."""
    waited = cli("wait", str(sweep), "--json")
    return first if first.rc != 0 or waited.rc == 0 else Proc(waited.rc, "", waited.stderr, first.command)


def concurrency_cases(fx: Fixtures) -> list[Case]:
    def launches(k: int, executor: str) -> Callable[[Path], Proc]:
        def runner(t: Path) -> Proc:
            sweep = t / "s"
            extra = ["--executor", "debug"] if executor == "debug" else []
            proc = together([popen("launch", str(sweep), *extra) for _ in range(k)], f"{k} x sweep launch ({executor})")
            return then_wait(sweep, proc)

        return runner

    def launch_and_cancel(t: Path) -> Proc:
        sweep = t / "s"
        proc = together([popen("launch", str(sweep)), popen("cancel", str(sweep))], "sweep launch & sweep cancel")
        cli("wait", str(sweep))
        t.joinpath("stamps.json").write_text(json.dumps({r: result_stamp(sweep / "runs" / r)
                                                         for r in fx.planned_ids}))  # fmt: skip
        retry = cli("launch", str(sweep), "--retry-failed")
        return then_wait(sweep, proc if proc.rc != 0 else retry)

    def killed_launch(delay: float, executor: str) -> Callable[[Path], Proc]:
        def runner(t: Path) -> Proc:
            sweep = t / "s"
            extra = ["--executor", "debug"] if executor == "debug" else []
            victim = popen("launch", str(sweep), *extra)
            time.sleep(delay)
            victim.send_signal(signal.SIGKILL)
            victim.communicate()
            return then_wait(sweep, cli("launch", str(sweep), *extra))

        return runner

    def two_collects(t: Path) -> Proc:
        sweep = t / "s"
        return together([popen("collect", str(sweep)), popen("collect", str(sweep))], "2 x sweep collect")

    def planned(t: Path) -> RunLedger:
        return RunLedger(copy_of(fx.planned_local, t), fx.planned_ids)

    def no_twice_none_lost(t: Path, proc: Proc, ledger: RunLedger) -> Verdict:
        return Verdict(twice=ledger.twice(), lost=ledger.lost())

    def cancel_retried(t: Path, proc: Proc, ledger: RunLedger) -> Verdict:
        # Cancelled runs are retried on purpose: only a result rewritten after it was done is "twice".
        stamps = json.loads((t / "stamps.json").read_text())
        twice = sum(1 for r, s in stamps.items() if s and list(result_stamp(ledger.sweep / "runs" / r) or []) != s)
        return Verdict(twice=twice, lost=ledger.lost())

    def collected_ok(t: Path, proc: Proc, ledger: RunLedger) -> Verdict:
        status = read_json_text(cli("status", str(ledger.sweep), "--json").stdout) or {}
        states = [r.get("state") for r in status.get("runs", [])]
        ok = states.count("done") == len(fx.planned_ids)
        return Verdict("" if ok else f"after two collects the states are {states}", ledger.twice(), ledger.lost())

    def collected(t: Path) -> RunLedger:
        return RunLedger(copy_of(fx.collected, t), fx.planned_ids)

    cases = [
        Case("concurrency", "2 launches at once (local)", setup=planned, check=no_twice_none_lost,
             runner=launches(2, "local")),
        Case("concurrency", "3 launches at once (local)", setup=planned, check=no_twice_none_lost,
             runner=launches(3, "local")),
        Case("concurrency", "2 launches at once (debug)", setup=planned, check=no_twice_none_lost,
             runner=launches(2, "debug")),
        Case("concurrency", "launch while cancel runs, then --retry-failed", setup=planned, check=cancel_retried,
             runner=launch_and_cancel),
        Case("concurrency", "2 collects at once", setup=collected, check=collected_ok, runner=two_collects),
    ]  # fmt: skip
    for delay in (1.0, 1.5, 2.5):
        for executor in ("local", "debug"):
            name = f"launch ({executor}) SIGKILLed after {delay} s, then relaunch"
            runner = killed_launch(delay, executor)
            cases.append(Case("concurrency", name, setup=planned, check=no_twice_none_lost, runner=runner))
    return cases


# --- main -------------------------------------------------------------------------------------------

CATEGORIES: dict[str, Callable[[Fixtures], list[Case]]] = {
    "usage": usage_cases,
    "config": config_cases,
    "yaml": yaml_cases,
    "csv": csv_cases,
    "paths": path_cases,
    "corrupted": corrupted_cases,
    "disk full": disk_cases,
    "concurrency": concurrency_cases,
}
SERIAL = ("disk full", "concurrency")  # mounts and timing-sensitive cases: one at a time


def table(records: list[dict], skipped: dict[str, str]) -> list[dict]:
    rows = []
    for category in CATEGORIES:
        mine = [r for r in records if r["category"] == category]
        if category in skipped:
            rows.append({"category": category, "skipped": skipped[category]})
            continue
        count = {o: sum(r["outcome"] == o for r in mine) for o in ("handled", "ok", "traceback", "other")}
        rows.append({"category": category, "cases": len(mine), "handled_or_ok": count["handled"] + count["ok"],
                     "handled": count["handled"], "ok": count["ok"], "tracebacks": count["traceback"],
                     "other": count["other"], "runs_trained_twice": sum(r["runs_trained_twice"] for r in mine),
                     "runs_lost": sum(r["runs_lost"] for r in mine)})  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    head = ("category", "cases", "handled or ok", "tracebacks", "other", "runs trained twice", "runs lost")
    keys = ("category", "cases", "handled_or_ok", "tracebacks", "other", "runs_trained_twice", "runs_lost")
    print(" | ".join(head))
    print(" | ".join("-" * len(h) for h in head))
    for row in rows:
        if "skipped" in row:
            print(f"{row['category']} | skipped: {row['skipped']}")
        else:
            print(" | ".join(str(row[k]) for k in keys))
    total = {k: sum(r.get(k, 0) for r in rows) for k in keys[1:]}
    print(" | ".join(["total", *(str(v) for v in total.values())]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="cases run at once (serial categories aside)")
    parser.add_argument("--only", default="", help="comma-separated categories to run")
    args = parser.parse_args()
    only = [c.strip() for c in args.only.split(",") if c.strip()] or list(CATEGORIES)
    started = time.perf_counter()
    skipped = {} if can_mount() else {"disk full": "needs root and `mount -t tmpfs` (not available here)"}
    scratch = Path(tempfile.mkdtemp(prefix="adversary-"))
    records: list[dict] = []
    lock = threading.Lock()
    try:
        fx = build_fixtures(scratch / "fixtures")
        print(f"fixtures built in {time.perf_counter() - started:.0f} s", flush=True)
        for category in only:
            if category in skipped:
                continue
            cases = CATEGORIES[category](fx)
            t0 = time.perf_counter()

            def one(case: Case) -> dict:
                record = run_case(case, scratch)
                with lock:
                    records.append(record)
                return record

            workers = 1 if category in SERIAL else args.workers
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = list(pool.map(one, cases))
            unmount_all_cases(scratch)
            bad = sum(r["outcome"] in ("traceback", "other") for r in done)
            print(f"{category}: {len(done)} cases in {time.perf_counter() - t0:.0f} s, {bad} not handled", flush=True)
    finally:
        unmount_all()
        shutil.rmtree(scratch, ignore_errors=True)
    rows = table(records, skipped)
    elapsed = time.perf_counter() - started
    print()
    print_table([r for r in rows if r["category"] in only or "skipped" in r])
    print(f"\n{len(records)} cases in {elapsed:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    order = list(CATEGORIES)
    records.sort(key=lambda r: (order.index(r["category"]), r["case"]))
    payload = {"seconds": round(elapsed, 1), "table": rows, "cases": records}
    (RESULTS / "adversary.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS / 'adversary.json'}")


def unmount_all_cases(scratch: Path) -> None:
    """The disk-full cases' mounts, once their category is done (the read-only fixture stays)."""
    for where in [m for m in MOUNTS if m.name == "m"]:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        MOUNTS.remove(where)


if __name__ == "__main__":
    main()
