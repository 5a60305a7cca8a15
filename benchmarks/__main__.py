"""``python -m benchmarks``: run the scenarios, write RESULTS.md and results.json.

``./dev bench`` runs this after setting up the environment. The full run
takes about six minutes on a 2-core machine; ``--quick`` a few seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import concurrency, crawl, overhead, report, sessions
from ._support import FULL, QUICK, Servers, Size, machine
from .goals import judge, met_text

HERE = Path(__file__).resolve().parent

# Scenario names on the command line; loop-lag is measured during concurrency.
SCENARIOS: dict[str, Callable[[Servers, Size], dict[str, Any]]] = {
    "overhead": overhead.run,
    "concurrency": concurrency.run,
    "sessions": sessions.run,
    "crawl": crawl.run,
}
ALIASES = {"loop-lag": "concurrency"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="aiomero side by side with the blocking client; writes "
        "RESULTS.md and results.json.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every scenario at a tiny size, to check that the suite runs",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[*SCENARIOS, *ALIASES],
        metavar="SCENARIO",
        help="run this scenario only (repeat for several): "
        + ", ".join([*SCENARIOS, *ALIASES]),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        metavar="DIR",
        help="where RESULTS.md and results.json go [default: benchmarks/]",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = QUICK if args.quick else FULL
    wanted = [ALIASES.get(name, name) for name in args.only or SCENARIOS]
    chosen = [name for name in SCENARIOS if name in wanted]
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": _command(argv),
        "quick": size.quick,
        "machine": machine(),
        "scenarios": {},
        "durations_s": {},
    }
    servers = Servers()
    try:
        for name in chosen:
            print(f"benchmark {name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            results["scenarios"][name] = SCENARIOS[name](servers, size)
            results["durations_s"][name] = time.perf_counter() - began
            print(
                f"  done in {results['durations_s'][name]:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        servers.close()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = time.perf_counter() - started
    results["goals"] = judge(results["scenarios"])

    markdown = args.out / "RESULTS.md"
    reading = report.kept_reading(markdown)
    (args.out / "results.json").write_text(
        json.dumps(_plain_numbers(results), indent=1, sort_keys=False) + "\n"
    )
    markdown.write_text(report.render(results, reading))

    for verdict in results["goals"]:
        print(
            f"{met_text(verdict['met']):>12}  {verdict['goal']}: {verdict['measured']}"
        )
    print(f"wrote {markdown} and {args.out / 'results.json'}")
    return 0


def _command(argv: list[str] | None) -> str:
    given = sys.argv[1:] if argv is None else argv
    return " ".join(["./dev bench", *given])


def _plain_numbers(value: Any) -> Any:
    """``value`` with floats rounded and non-finite ones as None (valid JSON)."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_numbers(item) for item in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
