"""Turn a pytest-benchmark JSON file into ``docs/benchmarks.md``: one table of measures.

Usage: ``python scripts/bench_report.py benchmarks.json "MACHINE LINE" "LOAD LINE" > out.md``

Each row of the table is one measure: ours, the best peer measured in the same run, their
ratio (ours / best peer: below 1 is faster or smaller than the peer), the goal and the
verdict. The measures with a goal are listed in ``MEASURES``; every other benchmark group
that holds one of ours and a peer gets a row of its own (no goal). A goal that is not met
shows the reason written in ``REASONS``. Below the table, every group is listed with
every benchmark's median.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Bench = dict[str, Any]

#: Names (substrings) of reference rows that are neither ours nor a peer (a direct call,
#: a floor, or a design alternative of ours measured for its decision).
BASELINES = ("direct", "unprotected", "floor", "baseline", "empty_loop", "exact_numpy",
             "in_process", "multi_watch")
#: Names (substrings) of our benchmarks in groups without a measure of their own.
OURS = ("ours", "resilience", "through_fault_proxy", "backup_manager")


@dataclass(frozen=True)
class Pick:
    """One figure of one benchmark: its median, or an ``extra_info`` field."""

    name: str  # the benchmark's name (with its parameters), exactly
    field: str = "median"  # "median", or a key of extra_info
    scale: float = 1.0  # the figure is divided by this (per-call figures of a loop)

    def value(self, benches: dict[str, Bench]) -> float | None:
        bench = benches.get(self.name)
        if bench is None:
            return None
        raw = bench["stats"]["median"] if self.field == "median" else \
            bench.get("extra_info", {}).get(self.field)
        return None if raw is None else float(raw) / self.scale


@dataclass(frozen=True)
class Measure:
    """A row: ``ours`` against the best (smallest) of ``peers``, judged by ``goal``.

    ``then``: for a goal in absolute time, (a peer, its median when the goal was set):
    when the goal is not met, the note says how much slower that peer ran in this run
    and what ours comes to, scaled back by that factor.
    """

    label: str
    ours: Pick
    peers: tuple[Pick, ...] = ()
    unit: str = "s"  # s (seconds), % (percent), B (bytes), x (a ratio)
    goal: str = ""
    met: Callable[[float, float | None], bool] | None = field(default=None, compare=False)
    then: tuple[Pick, float] | None = None


def _le(limit: float) -> Callable[[float, float | None], bool]:
    return lambda ours, ratio: ours <= limit


def _ratio_le(limit: float) -> Callable[[float, float | None], bool]:
    return lambda ours, ratio: ratio is not None and ratio <= limit


def _ge(limit: float) -> Callable[[float, float | None], bool]:
    return lambda ours, ratio: ours >= limit


P = Pick
_RTT = "test_one_byte_round_trip_interleaved"
_RETRY = "test_fail_fail_succeed_interleaved"
_BREAKER = "test_breaker_interleaved"
_CACHE = "test_cache_hit_interleaved"
MEASURES: tuple[Measure, ...] = (
    # The goals' figures come from the interleaved benchmarks: ours and the peers timed in
    # the same rounds (benchmarks/conftest.py), so load that comes and goes hits all alike.
    Measure("retry fail-fail-succeed on a VirtualClock", P(_RETRY, "ours_s"),
            (P(_RETRY, "pyresilience_s"), P(_RETRY, "backoff_s")),
            goal="≤ 3 µs and ≤ 0.7x best peer",
            met=lambda ours, ratio: ours <= 3e-6 and ratio is not None and ratio <= 0.7,
            then=(P(_RETRY, "pyresilience_s"), 4.16e-6)),
    Measure("retry success path", P("test_ours_success"),
            (P("test_pyresilience_success"), P("test_backoff_success"),
             P("test_tenacity_success"), P("test_stamina_success"))),
    Measure("breaker rejection while OPEN", P(_BREAKER, "ours_open_rejection_s"),
            (P(_BREAKER, "pybreaker_open_rejection_s"),),
            goal="≤ 1 µs", met=_le(1e-6),
            then=(P(_BREAKER, "pybreaker_open_rejection_s"), 1.88e-6)),
    Measure("breaker closed call", P("test_ours_closed_call"),
            (P("test_pybreaker_closed_call"), P("test_aiobreaker_closed_call"),
             P("test_purgatory_closed_decorator"), P("test_pyresilience_closed_decorator"))),
    Measure("breaker with a failure-rate window, closed call",
            P(_BREAKER, "ours_rate_window_s"), (P(_BREAKER, "purgatory_closed_s"),),
            goal="≤ 400 ns", met=_le(400e-9),
            then=(P(_BREAKER, "purgatory_closed_s"), 654e-9)),
    Measure("`ModelCache.get` hit", P(_CACHE, "ours_s"), (P(_CACHE, "cachetools_s"),),
            goal="≤ 1.0x TTLCache", met=_ratio_le(1.0)),
    Measure("`ModelCache.get` hit, real clock", P(_CACHE, "ours_real_clock_s"),
            (P(_CACHE, "cachetools_s"),), goal="≤ 1.0x TTLCache", met=_ratio_le(1.0)),
    Measure("keyed rate limiter, 100k keys round-robin: growth vs one key",
            P("test_ours_keyed_100k_keys", "growth_percent"),
            (P("test_limits_keyed_100k_keys", "growth_percent"),), unit="+%",
            goal="≤ +10%", met=_le(10.0)),
    Measure("keyed rate limiter: memory per key",
            P("test_ours_keyed_100k_keys", "bytes_per_key"),
            (P("test_limits_keyed_100k_keys", "bytes_per_key"),), unit="B",
            goal="≤ 160 B", met=_le(160.0)),
    Measure("plugin cost, 2,000 trivial tests, autoload off",
            P("test_plugin_on_vs_off[isolated]", "overhead_cpu_paired_percent"), unit="+%",
            goal="≤ +1%", met=_le(1.0)),
    Measure("plugin cost, 2,000 trivial tests, autoload on",
            P("test_plugin_on_vs_off[installed]", "overhead_cpu_paired_percent"), unit="+%",
            goal="≤ +1%", met=_le(1.0)),
    Measure("histogram worst quantile error (5 distributions, p50..p99.9)",
            P("test_ours_worst_quantile_error", "worst_error_percent"),
            (P("test_ddsketch_worst_quantile_error[0.005]", "worst_error_percent"),),
            unit="%", goal="≤ 0.25% in ≤ 44,032 B",
            met=lambda ours, ratio: ours <= 0.25),
    Measure("histogram memory", P("test_ours_worst_quantile_error", "fixed_memory_bytes"),
            (P("test_ddsketch_worst_quantile_error[0.0025]", "memory_bytes"),), unit="B",
            goal="≤ 44,032 B (before)", met=_le(44_032)),
    Measure("histogram record, one value at a time", P("test_ours_record_single"),
            (P("test_hdrhistogram_record_single"), P("test_ddsketch_record_single")),
            goal="≤ 0.25x hdrhistogram", met=_ratio_le(0.25)),
    Measure("histogram record, 1M values in bulk (per value)",
            P("test_ours_record_bulk", scale=1e6), goal="< 60 ns", met=_le(60e-9)),
    Measure("histogram merge of 64", P("test_ours_merge_64"),
            (P("test_hdrhistogram_merge_64"), P("test_ddsketch_merge_64")),
            goal="< 1 ms", met=_le(1e-3)),
    Measure("inactive failpoint (per call)", P("test_inactive_failpoint_x10000", scale=1e4),
            goal="< 100 ns", met=_le(100e-9)),
    Measure("10 virtual minutes of backoff and recovery",
            P("test_ten_minutes_of_backoff_and_recovery"), goal="< 1 s", met=_le(1.0)),
    Measure("Chroma transaction add vs raw add (1k records)",
            P("test_transaction_overhead_interleaved[1000rec]", "ratio"), unit="x"),
    *(Measure(f"Chroma rollback vs chromadb's own delete + re-add ({n // 1000}k records)",
              P(f"test_rollback_vs_raw_delete_and_readd[{n}rec]", "ratio"), unit="x",
              goal="≤ 1.05x", met=_le(1.05))
      for n in (1000, 10000, 50000)),
    Measure("Chroma backup, tar.zst", P("test_backup_manager[tar.zst]"),
            (P("test_peer_tar_zstd"),)),
    Measure("Chroma backup, tar.gz", P("test_backup_manager[tar.gz]"),
            (P("test_peer_tar_gzip_level_3"), P("test_peer_tar_czf"))),
    Measure("Chroma backup, directory", P("test_backup_manager[dir]"), (P("test_peer_cp_a"),)),
    Measure("event at a disabled log level", P("test_emit_with_bridge_disabled_level"),
            (P("test_stdlib_logger_disabled_level"),)),
    Measure("migrations upgrade of 20 (ours / alembic)",
            P("test_upgrade_beside_alembic", "ours_over_alembic"), unit="x"),
    *(Measure(f"proxy throughput, no toxic, client in {where}: ours / direct loopback",
              P(f"test_throughput_interleaved[{param}]", "ours_over_direct"), unit="x",
              goal="≥ 0.8x direct", met=_ge(0.8))
      for param, where in (("process", "its own process"), ("thread", "this process"))),
    Measure("proxy 1-byte round trip", P(_RTT, "ours_fault_proxy_us", scale=1e6),
            (P(_RTT, "naive_relay_us", scale=1e6),), goal="≤ 1.0x the naive relay",
            met=_ratio_le(1.0)),
)

def _keyed_growth(benches: dict[str, Bench]) -> str:
    """The growth of a bare dict lookup over the same keys, measured the same way."""
    def delta(name: str) -> tuple[float, float] | None:
        info = benches.get(name, {}).get("extra_info", {})
        one, many = info.get("one_key_s_per_call"), info.get("many_keys_s_per_call")
        return None if one is None or many is None else (many - one, 100 * (many / one - 1))

    floor, ours = delta("test_floor_dict_get_100k_keys"), delta("test_ours_keyed_100k_keys")
    if floor is None or ours is None:
        return ""
    return (f"the growth is the cost of finding a key that is not in the CPU's caches: a "
            f"bare dict lookup per key grows by {floor[0] * 1e9:.0f} ns here "
            f"({floor[1]:+.0f}%), ours by {ours[0] * 1e9:.0f} ns")


def _harness_spread(name: str) -> Callable[[dict[str, Bench]], str]:
    def reason(benches: dict[str, Bench]) -> str:
        bench = benches.get(name, {})
        info = bench.get("extra_info", {})
        spread = info.get("overhead_cpu_paired_iqr_percent")
        if spread is None:
            return ""
        return (f"the {bench['stats']['rounds']} rounds' own on/off ratios spread over "
                f"{spread:.1f} points (interquartile range); ratio of the medians "
                f"{info.get('overhead_cpu_percent', float('nan')):+.2f}%")

    return reason


def _real_clock_frame(benches: dict[str, Bench]) -> str:
    info = benches.get(_CACHE, {}).get("extra_info", {})
    virtual, real, peer = (info.get(k) for k in ("ours_s", "ours_real_clock_s",
                                                  "cachetools_s"))
    if not (virtual and real and peer):
        return ""
    return (f"the same hit on a VirtualClock is {virtual / peer:.2f}x; the real clock adds "
            f"`SystemClock.monotonic`'s frame ({(real - virtual) * 1e9:.0f} ns here), kept so "
            "that a fault patching `time.monotonic` reaches the cache")


def _relay_bound(name: str) -> Callable[[dict[str, Bench]], str]:
    def reason(benches: dict[str, Bench]) -> str:
        info = benches.get(name, {}).get("extra_info", {})
        bound, ours = info.get("c_relay_over_direct"), info.get("ours_over_c_relay")
        if bound is None or ours is None:
            return ""
        return (f"a relay in C (`benchmarks/splice_relay.c`, timed in the same rounds) "
                f"reached {bound:.2f}x direct on this machine; ours is {ours:.2f}x its "
                f"throughput and {info.get('ours_over_relay', math.nan):.2f}x the naive "
                f"relay's: a relay is a third busy party beside the client and the "
                f"upstream, and the machine's cores are the bound")

    return reason


#: Why a goal was not met, shown next to it, from the figures of the same run.
REASONS: dict[str, Callable[[dict[str, Bench]], str]] = {
    "keyed rate limiter, 100k keys round-robin: growth vs one key": _keyed_growth,
    "`ModelCache.get` hit, real clock": _real_clock_frame,
    **{f"proxy throughput, no toxic, client in {where}: ours / direct loopback":
       _relay_bound(f"test_throughput_interleaved[{param}]")
       for param, where in (("process", "its own process"), ("thread", "this process"))},
    "plugin cost, 2,000 trivial tests, autoload off":
        _harness_spread("test_plugin_on_vs_off[isolated]"),
    "plugin cost, 2,000 trivial tests, autoload on":
        _harness_spread("test_plugin_on_vs_off[installed]"),
}


def _scaled_back(measure: Measure, ours: float, benches: dict[str, Bench]) -> str:
    if measure.then is None:
        return ""
    peer = measure.then[0].value(benches)
    if peer is None:
        return ""
    factor = peer / measure.then[1]
    return (f"{_short(measure.then[0])} ran {factor:.2f}x its time when the goal was "
            f"set; scaled back, ours is {_fmt(ours / factor, measure.unit)}")


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit in ("%", "+%"):
        sign = "+" if unit == "+%" else ""
        return f"{value:{sign}.2f}%" if abs(value) < 10 else f"{value:{sign}.1f}%"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "x":
        return f"{value:.3f}x"
    for name, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {name}"
    return f"{value / 1e-9:.3g} ns"


def _group(bench: Bench) -> str:
    group = bench.get("group")
    return str(group) if group else str(bench["fullname"]).split("::")[0]


def _row(measure: Measure, benches: dict[str, Bench]) -> list[str] | None:
    ours = measure.ours.value(benches)
    if ours is None:
        return None
    peers = [(p, v) for p in measure.peers if (v := p.value(benches)) is not None]
    best = min(peers, key=lambda pv: pv[1]) if peers else None
    ratio = ours / best[1] if best is not None and best[1] else None
    if measure.met is None:
        verdict = "—"
    elif measure.met(ours, ratio):
        verdict = "met"
    else:
        reason = (REASONS[measure.label](benches) if measure.label in REASONS
                  else _scaled_back(measure, ours, benches))
        verdict = "**not met**" + (f": {reason}" if reason else "")
    peer = "—" if best is None else f"{_fmt(best[1], measure.unit)} ({_short(best[0])})"
    return [measure.label, _fmt(ours, measure.unit), peer,
            "—" if ratio is None else f"{ratio:.2f}x", measure.goal or "—", verdict]


def _short(pick: Pick | str) -> str:
    """A peer's name from its benchmark's (``test_pybreaker_open_rejection`` -> pybreaker)
    or from its side of an interleaved one (``pybreaker_open_rejection_s`` -> pybreaker)."""
    if isinstance(pick, Pick):
        if pick.field.endswith("_us"):  # naive_relay_us -> naive relay
            return pick.field.removesuffix("_us").replace("_", " ")
        if pick.field.endswith("_s"):
            return pick.field.split("_")[0]
        pick = pick.name
    words = pick.removeprefix("test_").split("_")
    if words[0] == "peer":
        return " ".join(words[1:3])
    if words[:2] == ["cache", "hit"]:
        return words[2]
    return words[0]


def _generic_rows(groups: dict[str, list[Bench]], used: set[str]) -> list[list[str]]:
    """A row per remaining group with one of ours and a peer (ours: its fastest)."""
    rows = []
    for group, items in sorted(groups.items()):
        if any(b["name"] in used for b in items):
            continue
        ours = [b for b in items if any(k in b["name"] for k in OURS)]
        peers = [b for b in items if b not in ours and not any(k in b["name"]
                                                               for k in BASELINES)]
        if not ours or not peers:
            continue
        mine = min(ours, key=lambda b: b["stats"]["median"])
        best = min(peers, key=lambda b: b["stats"]["median"])
        ratio = mine["stats"]["median"] / best["stats"]["median"]
        rows.append([f"{group} (`{mine['name']}`)", _fmt(mine["stats"]["median"], "s"),
                     f"{_fmt(best['stats']['median'], 's')} (`{best['name']}`)",
                     f"{ratio:.2f}x", "—", "—"])
    return rows


#: Hand-written notes placed after the table (measured by hand; not re-measured).
NOTES = Path(__file__).resolve().parent.parent / "benchmarks" / "notes.md"


def render(data: dict[str, Any], machine: str, load: str) -> str:
    """The Markdown page for pytest-benchmark's JSON ``data``."""
    benches = {b["name"]: b for b in data.get("benchmarks", [])}
    groups: dict[str, list[Bench]] = defaultdict(list)
    for bench in data.get("benchmarks", []):
        groups[_group(bench)].append(bench)
    rows, used = [], set()
    for measure in MEASURES:
        row = _row(measure, benches)
        if row is not None:
            rows.append(row)
            used.add(measure.ours.name)
    rows += _generic_rows(groups, used)
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by scripts/bench.sh (scripts/bench_report.py): do not edit. -->",
        "",
        f"Machine: {machine}. Load average (1, 5, 15 min) {load}.",
        "",
        "Every figure is a median of one run of `scripts/bench.sh`, ours and the peers in "
        "the same run. Ratio = ours / best peer (below 1: faster or smaller). Times are per "
        "call unless the measure says otherwise. Peer libraries sleep as little as each "
        "allows (no-op sleep hooks, or `time.sleep` patched out).",
        "",
        "| measure | ours | best peer | ratio | goal | verdict |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(cells) + " |" for cells in rows),
        "",
        NOTES.read_text(encoding="utf-8").split("-->", 1)[-1].strip(),
        "",
        "## Every benchmark, by group",
        "",
    ]
    for group in sorted(groups):
        items = sorted(groups[group], key=lambda b: b["stats"]["median"])
        lines += [f"### {group}", "", "| benchmark | median | rounds | notes |",
                  "|---|---|---|---|"]
        for bench in items:
            info = {k: v for k, v in bench.get("extra_info", {}).items() if k != "resilience"}
            notes = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in info.items())
            lines.append(f"| `{bench['name']}` | {_fmt(bench['stats']['median'], 's')} | "
                         f"{bench['stats']['rounds']} | {notes} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    print(render(data, argv[2], argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
