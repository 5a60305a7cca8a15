"""RESULTS.md: the figures of one run as tables, with the goals and a reading.

The reading is written by a person, after looking at a run: it sits
between the markers ``<!-- reading -->`` and ``<!-- /reading -->``, and a
new run keeps it (saying which run it was written for), so that rerunning
the benchmarks never silently drops it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .goals import met_text

READING_START = "<!-- reading -->"
READING_END = "<!-- /reading -->"

_NO_READING = (
    "No reading yet: look at the figures above, then write here what meets "
    "the goals, what does not, and the measurement that shows why."
)


def kept_reading(path: Path) -> str:
    """The reading of an earlier RESULTS.md at ``path``, or a placeholder."""
    try:
        text = path.read_text()
    except OSError:
        return _NO_READING
    found = re.search(
        re.escape(READING_START) + r"\n(.*?)\n" + re.escape(READING_END), text, re.S
    )
    return found.group(1).strip() if found else _NO_READING


def render(results: dict[str, Any], reading: str) -> str:
    """The whole of RESULTS.md."""
    m = results["machine"]
    scenarios = results["scenarios"]
    lines = [
        "# aiomero benchmarks",
        "",
        f"Measured {m['date']} with `{results['command']}`"
        + (" (quick: tiny sizes, not figures to read)" if results["quick"] else "")
        + f", in {results['seconds'] / 60:.1f} minutes.",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['os']}",
        f"- Python {m['python']} ({m['implementation']}), omero-py {m['omero-py']}, "
        f"zeroc-ice {m['zeroc-ice']}, aiomero {m['aiomero']} at commit "
        f"{m['commit']}",
        f"- load average (1, 5, 15 min) at the start: "
        f"{_listed(m['load_average_at_start'])}, at the end: "
        f"{_listed(m['load_average_at_end'])}",
        "",
        "The machine is shared: other work ran at the same time, so absolute "
        "figures move from run to run. What counts is the comparison within "
        "one run: the alternatives of a scenario run side by side, against the "
        "same emulator, taking turns. The emulator (aiomero.testing) runs in a "
        "child process with the latency given added to every reply; raw "
        "figures are in `results.json`.",
        "",
        "## Goals",
        "",
        "Reported, never asserted.",
        "",
        *_table(
            ["scenario", "goal", "measured", "met"],
            [
                [v["scenario"], v["goal"], v["measured"], met_text(v["met"])]
                for v in results["goals"]
            ],
        ),
        "",
    ]
    if "overhead" in scenarios:
        lines += _overhead(scenarios["overhead"])
    if "concurrency" in scenarios:
        lines += _concurrency(scenarios["concurrency"], m["cores"])
        lines += _loop_lag(scenarios["concurrency"])
    if "sessions" in scenarios:
        lines += _sessions(scenarios["sessions"])
    if "crawl" in scenarios:
        lines += _crawl(scenarios["crawl"])
    lines += ["## Reading", "", READING_START, reading, READING_END, ""]
    return "\n".join(lines)


# -- the scenarios ------------------------------------------------------------


def _overhead(found: dict[str, Any]) -> list[str]:
    lines = [
        "## 1. Overhead of one call",
        "",
        "Sequential calls on one session: `BlitzGateway` called directly, the "
        "same call through `asyncio.to_thread`, and `AsyncGateway`. "
        '`getObjects("Project")` returns ten projects; `keepAlive()` makes the '
        "same two remote calls each way (`ServiceFactory.keepAlive` of the "
        "admin service, which BlitzGateway's proxy wrapper first pings with "
        "another `keepAlive`). The thread hop is the floor of leaving the "
        "event loop: a no-op on a dedicated thread fed by a "
        "`queue.SimpleQueue`, its result handed back with "
        "`loop.call_soon_threadsafe`; the same `BlitzGateway` calls made through "
        "that bare hop show what leaving the loop costs with real work on the "
        "thread. `AsyncGateway(timeout=None)` makes its calls without an Ice "
        "invocation timeout; the default gateway bounds each one by 60 s. The "
        "variants take turns call by call; "
        "medians of every call.",
        "",
    ]
    for at in found["by_latency"].values():
        per = at["per_call"]
        rows = [["thread hop (no-op)", _us(per["hop"]["median_us"]), "", ""]]
        for call in ("getObjects", "keepAlive"):
            base = per[f"{call}_blocking"]["median_us"]
            for way, label in (
                ("blocking", "BlitzGateway"),
                ("hop", "BlitzGateway on the bare thread hop"),
                ("to_thread", "asyncio.to_thread"),
                ("aiomero", "AsyncGateway"),
                ("aiomero_untimed", "AsyncGateway(timeout=None)"),
            ):
                figures = per[f"{call}_{way}"]
                rows.append(
                    [
                        f"{call}: {label}",
                        _us(figures["median_us"]),
                        _us(figures["p90_us"]),
                        f"{figures['median_us'] / base:.2f}x",
                    ]
                )
        n = per["hop"]["n"]
        lines += [
            f"At {at['latency_ms']:g} ms latency ({n} calls of each):",
            "",
            *_table(["call", "median", "p90", "vs BlitzGateway"], rows),
            "",
        ]
        for call in ("getObjects", "keepAlive"):
            lines.append(_overhead_line(call, at))
        lines.append("")
    return lines


def _overhead_line(call: str, at: dict[str, Any]) -> str:
    c = at[call]
    line = (
        f"- {call}: AsyncGateway adds {c['added_us']:.0f} µs to the direct call "
        f"({c['aiomero_over_blocking']:.3f}x), against a no-op thread hop of "
        f"{at['hop_us']:.0f} µs: {c['aiomero_over_blocking_plus_hop']:.3f}x the "
        "direct call plus one hop."
    )
    if at["latency_ms"]:
        # Differences of a few tens of µs drown in the spread of calls that
        # wait milliseconds: only the ratios are worth reading there.
        return line
    return line + (
        " Of what it adds, the same call on the bare hop accounts for "
        f"{c['hop_us'] - c['blocking_us']:.0f} µs and aiomero's own path for "
        f"{c['aiomero_over_hop_us']:.0f} µs, of which {c['deadline_us']:.0f} µs "
        "is the Ice invocation timeout bounding every call (absent with "
        "`timeout=None`)."
    )


def _concurrency(found: dict[str, Any], cores: int) -> list[str]:
    lines = [
        "## 2. Concurrent callers",
        "",
        "N callers each make `getObjects` calls one after the other for a "
        "fixed time. `sequential` is one `BlitzGateway` called from the event "
        "loop, one call at a time whatever N (measured once per latency); "
        "`threads` is N `BlitzGateway` sessions on a pool of N threads "
        "(`run_in_executor`); `to_thread` is `asyncio.to_thread` over one "
        "shared `BlitzGateway` (the default executor); `pool` is an "
        "`AsyncGatewayPool` of N sessions. Latencies are measured from the "
        "caller. Ideal = N / the round trip of a lone `BlitzGateway` caller "
        "at that latency. CPU columns are milliseconds of CPU per call in the "
        "client and in the emulator; *cores busy* is both processes' CPU "
        "time per second of the run (the machine has "
        f"{cores} cores, shared).",
        "",
    ]
    for latency, rows in _by_latency(found["rows"]):
        ideal_of = {r["callers"]: r["ideal_calls_per_s"] for r in rows}
        round_trip = rows[0]["callers"] / rows[0]["ideal_calls_per_s"] * 1000
        lines += [
            f"At {latency:g} ms latency (lone round trip {round_trip:.2f} ms):",
            "",
            *_table(
                [
                    "N",
                    "way",
                    "calls/s",
                    "of ideal",
                    "p50 ms",
                    "p99 ms",
                    "client CPU ms",
                    "server CPU ms",
                    "cores busy",
                ],
                [
                    [
                        f"{r['callers']} (ideal {ideal_of[r['callers']]:.0f}/s)",
                        r["alternative"],
                        f"{r['calls_per_s']:.0f}",
                        f"{r['of_ideal']:.2f}",
                        f"{r['p50_ms']:.2f}",
                        f"{r['p99_ms']:.2f}",
                        f"{r['client_cpu_ms_per_call']:.2f}",
                        f"{r['server_cpu_ms_per_call']:.2f}",
                        f"{r['cores_busy']:.2f}",
                    ]
                    for r in rows
                ],
            ),
            "",
        ]
    return lines


def _loop_lag(found: dict[str, Any]) -> list[str]:
    lines = [
        "## 3. Event-loop lag during scenario 2",
        "",
        "A probe task sleeps 1 ms in a loop and records how late it wakes, "
        "during each run of scenario 2. Full garbage collections stop every "
        "thread; their count and the longest are given, as they explain "
        "many of the maxima.",
        "",
    ]
    for latency, rows in _by_latency(found["rows"]):
        lines += [
            f"At {latency:g} ms latency:",
            "",
            *_table(
                ["N", "way", "lag p50 ms", "lag p99 ms", "lag max ms", "full GCs"],
                [
                    [
                        str(r["callers"]),
                        r["alternative"],
                        f"{r['lag_p50_ms']:.2f}",
                        f"{r['lag_p99_ms']:.2f}",
                        f"{r['lag_max_ms']:.2f}",
                        f"{r['gc_full_pauses']} (longest {r['gc_full_max_ms']:.0f} ms)"
                        if r["gc_full_pauses"]
                        else "0",
                    ]
                    for r in rows
                ],
            ),
            "",
        ]
    return lines


def _sessions(found: dict[str, Any]) -> list[str]:
    added = found["added_sessions"]
    many = 1 + added
    labels = {
        "pool": "AsyncGatewayPool",
        "joined": "AsyncGatewayPool, join_sessions=True",
        "blocking": "BlitzGateway objects",
    }
    rows = []
    for kind, f in found["per_session"].items():
        rows.append(
            [
                labels[kind],
                f"{f['rss_kib_with_1'] / 1024:.1f}",
                f"{f[f'rss_kib_with_{many}'] / 1024:.1f}",
                f"{f['rss_mib_per_session']:.2f}",
                f"{f['threads_with_1']:.0f}",
                f"{f[f'threads_with_{many}']:.0f}",
                f"{f['threads_per_session']:.1f}",
            ]
        )
    lines = [
        "## 4. Cost per session",
        "",
        f"A child process opens 1, then {many} sessions, makes one "
        "`getObjects` call on each, and reads `VmRSS` and `Threads` from "
        f"`/proc/self/status`; per session = difference / {added}. Medians "
        f"of {found['repeats']} alternating runs.",
        "",
        *_table(
            [
                "sessions of",
                "RSS MiB, 1",
                f"RSS MiB, {many}",
                "MiB per session",
                "threads, 1",
                f"threads, {many}",
                "threads per session",
            ],
            rows,
        ),
        "",
        f"Time to open a pool of {added} sessions (`min_size={added}`), by "
        "logging in each and with `join_sessions=True`, medians of "
        f"{found['repeats']}:",
        "",
        *_table(
            ["latency", "logging in", "join_sessions=True", "joined / logging in"],
            [
                [
                    f"{o['latency_ms']:g} ms",
                    f"{o['login_s'] * 1000:.0f} ms",
                    f"{o['joined_s'] * 1000:.0f} ms",
                    f"{o['joined_over_login']:.2f}",
                ]
                for o in found["opening"].values()
            ],
        ),
        "",
    ]
    return lines


def _crawl(found: dict[str, Any]) -> list[str]:
    clients = found["clients"]
    walk = clients["walk"]
    labels = {
        "walk": "BlitzGateway walk, sequential",
        "crawler": f"aiomero.crawl.Crawler, pool of {found['sessions']}",
        "cli": f"aiomero crawl -c {found['sessions']} (whole command)",
    }
    rows = []
    for name in ("walk", "crawler", "cli"):
        c = clients[name]
        rows.append(
            [
                labels[name],
                f"{c['objects']:,}",
                f"{c['wall_s']:.1f}",
                f"{c['objects_per_s']:,.0f}",
                f"{c['cpu_s']:.2f}",
                f"{c['cpu_ms_per_object'] * 1000:.1f}",
                f"{c['server_cpu_s']:.1f}",
                f"{walk['wall_s'] / c['wall_s']:.1f}x",
                f"{c['cpu_ms_per_object'] / walk['cpu_ms_per_object']:.2f}",
            ]
        )
    startup = clients["startup"]
    counts = ", ".join(f"{k} {v:,}" for k, v in walk["counts"].items())
    return [
        "## 5. Crawling a whole server",
        "",
        f"The IDR-shaped catalog at scale {found['scale']:g} ({counts}), "
        f"served with {found['latency_ms']:g} ms latency. Every client runs "
        "in a child process of its own, so CPU times are the client's only. "
        "The walk and the crawler are timed inside their child from the "
        "login to the last object; the command from outside, interpreter "
        "start, imports and logins included. The walk covered the whole "
        "catalog (no sampling, nothing extrapolated)."
        + ("" if found["same_objects"] else " **The clients found different counts.**"),
        "",
        *_table(
            [
                "client",
                "objects",
                "wall s",
                "objects/s",
                "client CPU s",
                "CPU µs/object",
                "server CPU s",
                "speed vs walk",
                "CPU/object vs walk",
            ],
            rows,
        ),
        "",
        f"Queries: the walk made {walk['queries']:,}, the crawler "
        f"{clients['crawler']['queries']:,}. Starting an interpreter and "
        f"importing what the command needs takes {startup['wall_s']:.2f} s and "
        f"{startup['cpu_s']:.2f} s of CPU on its own; the command's summary "
        f"line: `{(clients['cli'].get('summary') or [''])[0]}`.",
        "",
    ]


# -- helpers --------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _us(value: float) -> str:
    return f"{value:,.0f} µs"


def _listed(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _by_latency(rows: list[dict[str, Any]]) -> list[tuple[float, list[dict[str, Any]]]]:
    found: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["latency_ms"], []).append(row)
    return list(found.items())
