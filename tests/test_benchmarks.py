"""The benchmark suite runs end to end at a tiny size and writes its figures.

Only the shape of the results is checked: speed goals are reported by the
suite, never asserted here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"overhead", "concurrency", "sessions", "crawl"}
VARIANTS = {
    "hop",
    *(
        f"{call}_{way}"
        for call in ("getObjects", "keepAlive")
        for way in ("blocking", "hop", "to_thread", "aiomero", "aiomero_untimed")
    ),
}
ALTERNATIVES = {"sequential", "threads", "to_thread", "pool"}
# The scenario of each goal, in the order of the goals table.
GOAL_SCENARIOS = [
    "overhead",
    "overhead",
    "concurrency",
    "concurrency",
    "loop-lag",
    "sessions",
    "sessions",
    "crawl",
    "crawl",
]


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    done = run_benchmarks("--quick", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, json.loads((out / "results.json").read_text())


pytestmark = pytest.mark.slow


def test_quick_run_measures_every_scenario(quick_run: Any) -> None:
    """--quick writes figures for every scenario and every goal."""
    _, results = quick_run
    assert set(results["scenarios"]) == SCENARIOS
    assert results["quick"] is True
    assert [v["scenario"] for v in results["goals"]] == GOAL_SCENARIOS
    for verdict in results["goals"]:
        assert verdict["met"] in (True, False, None)


def test_overhead_has_a_median_for_every_variant(quick_run: Any) -> None:
    """Scenario 1 gives a positive median per call for each way of calling."""
    _, results = quick_run
    by_latency = results["scenarios"]["overhead"]["by_latency"]
    assert by_latency
    for at in by_latency.values():
        assert set(at["per_call"]) == VARIANTS
        for figures in at["per_call"].values():
            assert figures["n"] > 0 and figures["median_us"] > 0
        for call in ("getObjects", "keepAlive"):
            assert number(at[call]["aiomero_over_blocking"])


def test_concurrency_has_every_alternative_and_the_loop_lag(quick_run: Any) -> None:
    """Scenarios 2 and 3 give throughput, latency and lag per way and N."""
    _, results = quick_run
    found = results["scenarios"]["concurrency"]
    rows = found["rows"]
    seen = {(r["alternative"], r["callers"]) for r in rows}
    assert seen == {(a, n) for a in ALTERNATIVES for n in found["callers"]}
    for row in rows:
        assert row["calls"] > 0 and row["calls_per_s"] > 0
        for key in ("p50_ms", "p99_ms", "of_ideal", "lag_p50_ms", "lag_max_ms"):
            assert number(row[key]), (row["alternative"], key)


def test_sessions_gives_memory_threads_and_opening_times(quick_run: Any) -> None:
    """Scenario 4 gives the cost per session of each kind and opening times."""
    _, results = quick_run
    found = results["scenarios"]["sessions"]
    assert set(found["per_session"]) == {"pool", "joined", "blocking"}
    for figures in found["per_session"].values():
        assert figures["threads_with_1"] > 0
        assert number(figures["rss_mib_per_session"])
        assert number(figures["threads_per_session"])
    for opening in found["opening"].values():
        assert opening["login_s"] > 0 and opening["joined_s"] > 0


def test_crawl_clients_find_the_same_objects(quick_run: Any) -> None:
    """Scenario 5's walk, crawler and command each count every object."""
    _, results = quick_run
    found = results["scenarios"]["crawl"]
    clients = found["clients"]
    assert found["same_objects"] is True
    for name in ("walk", "crawler", "cli"):
        assert clients[name]["objects"] > 0
        assert clients[name]["wall_s"] > 0
        assert number(clients[name]["cpu_ms_per_object"])
    assert number(found["crawler_speedup"])


def test_results_md_has_the_machine_and_a_table_per_scenario(quick_run: Any) -> None:
    """RESULTS.md names the machine and Python and has each scenario's table."""
    out, results = quick_run
    text = (out / "RESULTS.md").read_text()
    assert results["machine"]["cpu"] in text
    assert f"Python {results['machine']['python']}" in text
    for heading in (
        "## Goals",
        "## 1. Overhead",
        "## 2. Concurrent",
        "## 3. Event-loop lag",
        "## 4. Cost per session",
        "## 5. Crawling",
        "<!-- reading -->",
    ):
        assert heading in text
    assert text.count("| --- |") >= 7
    for verdict in results["goals"]:
        assert f"| {verdict['scenario']} | {verdict['goal']} |" in text


def test_goals_name_the_pool_runs_that_miss() -> None:
    """The pool is judged against the threads at 50 ms, and on its loop lag
    in every run, naming the runs that miss."""
    spec = importlib.util.spec_from_file_location(
        "benchmark_goals", ROOT / "benchmarks" / "goals.py"
    )
    assert spec and spec.loader
    goals = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(goals)

    def row(way: str, callers: int, latency: float, **figures: float) -> Any:
        found = {"alternative": way, "callers": callers, "latency_ms": latency}
        return found | {"lag_p99_ms": 1.0, "lag_max_ms": 2.0} | figures

    rows = [
        row("threads", 8, 50.0, calls_per_s=100.0),
        row("pool", 8, 50.0, calls_per_s=96.0, of_ideal=0.96),
        row("threads", 32, 50.0, calls_per_s=400.0),
        row("pool", 32, 50.0, calls_per_s=360.0, of_ideal=0.9, lag_p99_ms=6.0),
        row("pool", 64, 5.0, calls_per_s=1.0, of_ideal=0.1, lag_max_ms=21.0),
    ]
    verdicts = goals.judge({"concurrency": {"rows": rows}})
    assert [v["scenario"] for v in verdicts] == GOAL_SCENARIOS
    of_ideal, of_threads, lag = verdicts[2:5]
    assert of_ideal["met"] is True
    assert of_threads["met"] is False
    assert of_threads["measured"] == "N=8: 0.960, N=32: 0.900"
    assert lag["met"] is False
    assert lag["measured"].startswith("2 of 3 runs miss: 50 ms N=32; 5 ms N=64 (")
    assert {v["met"] for v in verdicts[:2] + verdicts[5:]} == {None}


def test_only_runs_one_scenario_and_keeps_the_reading(tmp_path: Path) -> None:
    """--only runs that scenario alone, and a reading already written stays."""
    (tmp_path / "RESULTS.md").write_text(
        "old\n<!-- reading -->\nThe overhead is small.\n<!-- /reading -->\n"
    )
    done = run_benchmarks("--quick", "--only", "overhead", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["scenarios"]) == {"overhead"}
    text = (tmp_path / "RESULTS.md").read_text()
    assert "The overhead is small." in text
    assert "## 5. Crawling" not in text
