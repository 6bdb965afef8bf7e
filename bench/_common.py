"""Shared helpers for the benchmarks: machine info, statistics, rich tables, result files.

Benchmarks compare quotepart with a competitor or a ceiling measured in the same run,
because the machines are shared and noisy: ratios travel between machines, seconds do not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PACKAGES = ("quotepart", "sqlalchemy", "cryptography", "rfc8785", "pymerkle", "rich", "alembic")

TABLE_WIDTH = 150  # when not on a terminal (nohup logs), keep table rows on one line

stdout = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else TABLE_WIDTH)


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so temporary workspaces (gigabytes) are removed."""

    def handler(signum: int, _frame: object) -> None:
        log(f"stopped by signal {signum}; removing temporary files")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark shares: --quick (a smoke test) and --output."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--output", type=Path, help="results file (default bench/results/...)")
    return parser


def log(message: str) -> None:
    """Progress and diagnostics go to stderr; tables go to stdout."""
    stderr.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge the figures: cores, Python, package versions, commit, date."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 1
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        **quotepart_source(),
    }


def quotepart_source() -> dict[str, Any]:
    """Which quotepart code ran: the repository's src/ (commit, uncommitted changes or not),
    or a snapshot exported with `git archive` that holds a COMMIT file beside its src/."""
    import quotepart

    package = Path(quotepart.__file__).resolve().parent
    snapshot_commit = package.parent.parent / "COMMIT"
    if snapshot_commit.exists():
        return {
            "quotepart_source": str(package),
            "git_commit": snapshot_commit.read_text().strip(),
            "git_dirty": False,
        }
    return {
        "quotepart_source": str(package),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", ":/src")),  # from the repo root
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=BENCH_DIR, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def _no_check(writer: object, body: object, entry: object) -> None:
    return None


@contextmanager
def rules_off(active: bool = True) -> Iterator[None]:
    """Within the block, every rule of `quotepart.store.rights.RULES` has a no-op check
    (`dataclasses.replace(rule, check=...)`), in this process only; restored on exit.

    A benchmark device to measure what the rights layer costs: quotepart has no such
    switch, and entries appended this way were never judged."""
    from quotepart.store import rights

    saved = dict(rights.RULES)
    if active:
        for kind, found in saved.items():
            rights.RULES[kind] = dataclasses.replace(found, check=_no_check)
    try:
        yield
    finally:
        rights.RULES.clear()
        rights.RULES.update(saved)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """`with stopwatch() as elapsed: ...`, then `elapsed[0]` holds the seconds taken."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentiles_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (inclusive quantiles, so small samples stay inside the data)."""
    cuts = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return {
        "p50_ms": cuts[49] * 1e3,
        "p95_ms": cuts[94] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "max_ms": max(latencies_s) * 1e3,
        "count": len(latencies_s),
    }


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def new_table(
    title: str, columns: Sequence[str], caption: str | None = None, *, text_columns: int = 1
) -> Table:
    """A table whose first `text_columns` columns are left-aligned text, the rest numbers."""
    table = Table(title=title, caption=caption, caption_justify="left", title_justify="left")
    for position, column in enumerate(columns):
        table.add_column(column, justify="left" if position < text_columns else "right")
    return table


def results_path(name: str, *, quick: bool, override: Path | None) -> Path:
    """`bench/results/<name>.json`; a --quick smoke run writes `<name>-quick.json` instead,
    so that it never overwrites the full-size figures."""
    if override is not None:
        return override
    return RESULTS_DIR / (f"{name}-quick.json" if quick else f"{name}.json")


def write_results(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    temporary.replace(path)
    log(f"results written to {path}")
