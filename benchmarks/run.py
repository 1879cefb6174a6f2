"""Run every benchmark and print one table: figure, this project, bare baseline, ratio, goal,
pass/short.

Each benchmark runs as its own process (as `python benchmarks/NAME.py …` would), one after the
other so they do not load the machine for each other. Their tables reach this script as JSON
lines through `$WORKBENCH_BENCH_JSON` (see `_common.emit_json`); their output goes to a log
file per benchmark (`--verbose`: to the terminal too). A benchmark that fails or times out
becomes a FAILED row; shorts are reported, not errors.

    benchmarks/run [--quick] [--only NAME]... [--skip NAME]... [--logs DIR] [--verbose]

Exit status: 0 when every benchmark ran, 1 when one failed or printed no table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JSON_ENV = "WORKBENCH_BENCH_JSON"  # the same name as _common.JSON_ENV


@dataclass(frozen=True)
class Benchmark:
    """One script; `quick` and `full` are its arguments under `run --quick` and `run`."""

    name: str
    quick: tuple[str, ...]
    full: tuple[str, ...] = ()
    timeout_quick: float = 300
    timeout_full: float = 1800


# In the order they run. `--quick` sizes are the smallest that still give a figure worth
# reading; the full run uses each script's own defaults (the sizes of the goals).
BENCHMARKS = (
    Benchmark("audit_append", ("--quick", "--rounds", "3")),
    Benchmark("audit_verify", ("--events", "50000", "--rounds", "2")),
    Benchmark("audit_query", ("--events", "50000", "--runs", "20")),
    Benchmark("grants", ("--quick",)),
    Benchmark("sql_credentials", ("--quick",)),
    Benchmark("data_read", ("--smoke",)),
    Benchmark("tenant_scale", ("--smoke",)),
    Benchmark("spawn", ("--only", "1", "--rounds", "2"), timeout_full=3600),
    Benchmark("jobs", ("--quick", "--epochs", "100")),
    Benchmark("lineage", ("--artifacts", "20000", "--runs", "10")),
    Benchmark("erasure", ("--objects", "3000", "--rounds", "1")),
)


@dataclass
class Outcome:
    name: str
    seconds: float
    returncode: int | None  # None: timed out
    tables: list[dict[str, object]]
    log: Path
    tail: str


def run_one(bench: Benchmark, quick: bool, logs: Path, verbose: bool) -> Outcome:
    args = bench.quick if quick else bench.full
    timeout = bench.timeout_quick if quick else bench.timeout_full
    log = logs / f"{bench.name}.log"
    rows = logs / f"{bench.name}.jsonl"
    rows.unlink(missing_ok=True)
    env = dict(os.environ, **{JSON_ENV: str(rows), "PYTHONUNBUFFERED": "1"})
    cmd = [sys.executable, str(HERE / f"{bench.name}.py"), *args]
    print(f"→ {bench.name} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    returncode: int | None
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        deadline = started + timeout
        try:
            for line in proc.stdout:
                out.write(line)
                if verbose:
                    sys.stdout.write("   " + line)
                if time.perf_counter() > deadline:
                    raise subprocess.TimeoutExpired(cmd, timeout)
            returncode = proc.wait(max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            # the whole process group: the benchmarks start servers of their own
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
            returncode = None
    seconds = time.perf_counter() - started
    tables = []
    if rows.exists():
        tables = [json.loads(line) for line in rows.read_text().splitlines() if line.strip()]
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    status = "timed out" if returncode is None else f"exit {returncode}"
    print(f"  {status}, {len(tables)} table(s), {seconds:.0f} s", flush=True)
    return Outcome(bench.name, seconds, returncode, tables, log, lines[-1] if lines else "")


def table(outcomes: list[Outcome]) -> list[tuple[str, ...]]:
    """The rows of the one report, a FAILED row for each benchmark that did not finish."""
    rows: list[tuple[str, ...]] = []
    for o in outcomes:
        for t in o.tables:
            for r in t["rows"]:  # type: ignore[attr-defined]
                ratio = r["ratio"]
                rows.append(
                    (
                        f"{o.name}: {r['figure']}",
                        r["ours"],
                        r["bare"],
                        "-" if ratio is None else f"{ratio:.2f}x",
                        r["goal"],
                        r["verdict"],
                    )
                )
        if o.returncode != 0 or not o.tables:
            why = "timed out" if o.returncode is None else f"exit {o.returncode}"
            rows.append((f"{o.name}: did not finish ({why})", o.tail[:60], "-", "-", "-", "FAILED"))
    return rows


def markdown(rows: list[tuple[str, ...]]) -> str:
    header = ("figure", "this project", "bare baseline", "ratio", "goal", "pass/short")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [b.name for b in BENCHMARKS]
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--only", action="append", choices=names, help="run only this one")
    parser.add_argument("--skip", action="append", default=[], choices=names, help="skip it")
    parser.add_argument("--logs", type=Path, help="keep each benchmark's output here")
    parser.add_argument("--verbose", action="store_true", help="show each benchmark's output")
    parser.add_argument("--json", type=Path, help="also write every table as JSON to this file")
    args = parser.parse_args()

    chosen = [b for b in BENCHMARKS if (not args.only or b.name in args.only)]
    chosen = [b for b in chosen if b.name not in args.skip]
    logs = args.logs or Path(tempfile.mkdtemp(prefix="wb-bench-run-"))
    logs.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    began = time.perf_counter()
    outcomes = [run_one(b, args.quick, logs, args.verbose) for b in chosen]
    total = time.perf_counter() - began
    load_after = os.getloadavg()

    rows = table(outcomes)
    print()
    print(f"## Workbench benchmarks{' (--quick)' if args.quick else ''}")
    print(
        f"({platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end; "
        f"{total:.0f} s in all)"
    )
    print()
    print(markdown(rows))
    print()
    print("time per benchmark: " + ", ".join(f"{o.name} {o.seconds:.0f} s" for o in outcomes) + ".")
    print(f"Each benchmark's output and notes: {logs}/NAME.log")
    shorts = sum(r[-1] == "SHORT" for r in rows)
    passes = sum(r[-1] == "pass" for r in rows)
    failed = [o.name for o in outcomes if o.returncode != 0 or not o.tables]
    print(f"{passes} pass, {shorts} short, {len(failed)} failed to run {failed or ''}".rstrip())
    if args.json:
        args.json.write_text(
            json.dumps(
                [{"benchmark": o.name, "seconds": o.seconds, "tables": o.tables} for o in outcomes],
                indent=2,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
