"""Start-up of the `quotepart` command: `--help` and `log checkpoint` against a bare interpreter.

Issue 12, "A lazy namespace and a fast CLI", target: each command within 0.4 s of the bare
interpreter (`python -c pass`), measured in the same run.

Each command is a new process, run `--repeats` times (default 15); the commands take
turns within a repeat, so that the machine's load drifts over all of them alike. Reported:
the median, the spread (min to max) and the median's excess over `python -c pass`.

* `python -c pass`: the baseline, the interpreter alone;
* `python -c "import quotepart.cli"`: what every command pays before it parses anything;
* `quotepart --help`: lists every command with its short help (imports none of them);
* `quotepart log checkpoint`: opens a workspace (SQLite, made beforehand with a few
  entries) and prints its signed checkpoint: the workspace, its database layer and the log;
* the floor under it, in the same run: `python -c "import sqlalchemy, ..."`, the libraries
  no command that opens a workspace can do without (SQLAlchemy with its SQLite dialect,
  cryptography's Ed25519, click, rfc8785, python-ulid), and nothing of quotepart.

Wall time is the target's measure, but on a shared machine it grows with the load (a
process gets a share of a core); the CPU seconds of each child (user + system, from
`getrusage`) are reported beside it, as the load-robust figure.

`quotepart` runs as `python -m quotepart.cli` (what the console script calls), with the
same interpreter and PYTHONPATH as this script. Bytecode is cached, as in an installed
package: the children write it under a temporary PYTHONPYCACHEPREFIX (src/ stays clean)
during one warm-up run of each command, which is not timed. `--no-bytecode-cache`
measures with PYTHONDONTWRITEBYTECODE=1 instead (every module of src/ compiled each time).

    python bench/cli.py             # 15 repeats
    python bench/cli.py --quick     # 3 repeats
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    bench_parser,
    log,
    machine_info,
    median,
    new_table,
    results_path,
    stdout,
    write_results,
)

from quotepart.workspace import init_workspace

TARGET_OVERHEAD_S = 0.4
BASELINE = "python -c pass"
FLOOR = "floor: import sqlalchemy, cryptography, click…"
FLOOR_IMPORTS = (
    "import sqlalchemy, sqlalchemy.dialects.sqlite, click, rfc8785, ulid, "
    "cryptography.hazmat.primitives.asymmetric.ed25519"
)
TARGETED = ("quotepart --help", "quotepart log checkpoint")


def make_workspace(folder: Path, parties: int) -> None:
    """A SQLite workspace with `parties` registered parties and an asset each: a few entries."""
    with init_workspace(folder) as ws:
        for number in range(parties):
            party = ws.register_party(f"party {number}")
            ws.register_asset(
                f"asset {number}".encode(), asset_kind="dataset", name=f"d{number}", by=party
            )


def child_env(pycache: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of `argv` in a new process."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu_s() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()}")
    return elapsed, cpu


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--parties", type=int, default=4, help="entries: 2 per party")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="PYTHONDONTWRITEBYTECODE=1: compile every module of src/ in each run",
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-cli-") as folder:
        workspace = Path(folder) / "ws"
        make_workspace(workspace, args.parties)
        env = child_env(None if args.no_bytecode_cache else Path(folder) / "pycache")
        python = [sys.executable]
        commands = {
            BASELINE: [*python, "-c", "pass"],
            'python -c "import quotepart.cli"': [*python, "-c", "import quotepart.cli"],
            "quotepart --help": [*python, "-m", "quotepart.cli", "--help"],
            "quotepart log checkpoint": [
                *python,
                "-m",
                "quotepart.cli",
                "log",
                "checkpoint",
                "--workspace",
                str(workspace),
            ],
            FLOOR: [*python, "-c", FLOOR_IMPORTS],
        }
        log("warm-up: one untimed run of each command (writes the bytecode cache)")
        for argv in commands.values():
            run_once(argv, env)
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for repeat in range(repeats):
            log(f"repeat {repeat + 1}/{repeats}")
            turn = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in turn:
                wall_s, cpu_s = run_once(commands[name], env)
                seconds[name].append(wall_s)
                cpu[name].append(cpu_s)

    bare, bare_cpu = median(seconds[BASELINE]), median(cpu[BASELINE])
    rows = {}
    for name, values in seconds.items():
        over = median(values) - bare
        rows[name] = {
            "seconds": values,
            "median_s": median(values),
            "min_s": min(values),
            "max_s": max(values),
            "over_bare_median_s": over,
            "cpu_seconds": cpu[name],
            "cpu_median_s": median(cpu[name]),
            "cpu_over_bare_median_s": median(cpu[name]) - bare_cpu,
            "met": over <= TARGET_OVERHEAD_S if name in TARGETED else None,
            "met_in_cpu_time": (
                median(cpu[name]) - bare_cpu <= TARGET_OVERHEAD_S if name in TARGETED else None
            ),
        }
    table = new_table(
        f"quotepart start-up, {repeats} repeats, a new process each "
        f"({'no bytecode cache' if args.no_bytecode_cache else 'bytecode cached'})",
        [
            "command",
            "wall median s",
            "wall min – max s",
            "wall over bare s",
            "CPU median s",
            "CPU over bare s",
            "≤ 0.4 s over bare (wall / CPU)",
        ],
        text_columns=1,
        caption="median over the repeats; 'over bare': the median minus python -c pass's",
    )
    verdict = {None: "—", True: "met", False: "MISSED"}
    for name, row in rows.items():
        table.add_row(
            name,
            f"{row['median_s']:.3f}",
            f"{row['min_s']:.3f} – {row['max_s']:.3f}",
            "—" if name == BASELINE else f"{row['over_bare_median_s']:+.3f}",
            f"{row['cpu_median_s']:.3f}",
            "—" if name == BASELINE else f"{row['cpu_over_bare_median_s']:+.3f}",
            "—"
            if row["met"] is None
            else f"{verdict[row['met']]} / {verdict[row['met_in_cpu_time']]}",
        )
    stdout.print(table)
    write_results(
        results_path("cli", quick=args.quick, override=args.output),
        {
            "benchmark": "cli",
            "target_over_bare_s": TARGET_OVERHEAD_S,
            "repeats": repeats,
            "bytecode_cache": not args.no_bytecode_cache,
            "workspace_entries": 2 * args.parties,
            "commands": {name: " ".join(argv) for name, argv in commands.items()},
            "results": rows,
            "met": all(rows[name]["met"] for name in TARGETED),
            "met_in_cpu_time": all(rows[name]["met_in_cpu_time"] for name in TARGETED),
            "load_average_after": os.getloadavg(),
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
