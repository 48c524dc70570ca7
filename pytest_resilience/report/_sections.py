"""Sections of ``report.html`` other than the operations: each is one function of the
report dict that returns its HTML, or ``""`` when it has nothing to show."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = [
    "budgets_section",
    "chaos_section",
    "coverage_section",
    "environment_section",
    "error_type",
    "errors_section",
    "failures_section",
    "header_section",
    "tests_section",
]

_BAD = ("failed", "error")
_OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
_VERDICT_CSS = {True: "pass", False: "fail", None: "unverified"}
_VERDICT_WORD = {True: "met", False: "broken", None: "unverified"}
_ERROR = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def _families(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{escape(str(k))} {v}" for k, v in counts.items()) or "none"


def header_section(report: Mapping[str, Any]) -> str:
    """The verdict at a glance: a coloured banner, the headline and the counts."""
    from pytest_resilience.report._markdown import headline

    s = report["summary"]
    ok = bool(s["ok"])
    counts = {k: s.get("errors" if k == "error" else k, 0) for k in _OUTCOMES}
    chips = "".join(f'<span class="chip {k}">{n} {k}</span>' for k, n in counts.items() if n)
    budgets = s.get("budgets") or {}
    if budgets.get("total"):
        chips += (f'<span class="chip">{budgets["passed"]}/{budgets["total"]} budgets met'
                  "</span>")
    chaos = s.get("chaos") or {}
    if chaos.get("tests"):
        chips += f'<span class="chip">{chaos["plans"]} chaos plans</span>'
    lost = "".join(f'<p class="fail">worker {escape(w)} was lost: its tests are missing.</p>'
                   for w in report.get("lost_workers", []))
    text = headline(report).split(" ", 1)[1]
    return (
        f'<header class="verdict {"passed" if ok else "failed"}" id="verdict">'
        f'<div class="badge">{"PASSED" if ok else "FAILED"}</div><div><h1>{escape(text)}</h1>'
        f'<p class="chips">{chips or "no tests ran"}</p>'
        f"<p>faults fired: {_families(s['faults_fired'])} · seed <code>{report['seed']}</code>"
        f" ({escape(str(report['seed_source']))}) · {escape(str(report['datetime']))}</p>"
        f"{lost}</div></header>"
    )


def failures_section(report: Mapping[str, Any]) -> str:
    """Each failure: test, phase, message, faults active and fired, replay command."""
    cards = []
    for test in report["tests"]:
        if test["outcome"] not in _BAD:
            continue
        failure = test.get("failure") or {}
        facts = []
        if failure.get("faults"):
            facts.append(f"<dt>faults active</dt><dd>{escape(', '.join(failure['faults']))}</dd>")
        if test.get("faults"):
            facts.append(f"<dt>faults fired</dt><dd>{_families(test['faults'])}</dd>")
        if failure.get("replay"):
            facts.append(f'<dt>replay</dt><dd><code class="replay">{escape(failure["replay"])}'
                         "</code></dd>")
        cards.append(
            f'<article class="failure"><h3><code>{escape(test["nodeid"])}</code> '
            f'<span class="fail">{escape(test["outcome"])} in '
            f"{escape(str(failure.get('phase', '?')))}</span></h3>"
            f"<pre>{escape(str(failure.get('message', '')))}</pre><dl>{''.join(facts)}</dl>"
            "</article>")
    if not cards:
        return ""
    return f'<section id="failures"><h2>Failures ({len(cards)})</h2>{"".join(cards)}</section>'


def _budget_cell(test: Mapping[str, Any]) -> tuple[str, str]:
    budgets = (test.get("sla") or {}).get("budgets") or []
    if not budgets:
        return "", "-1"
    met = sum(b["passed"] is True for b in budgets)
    css = "pass" if met == len(budgets) else "fail"
    return f'<span class="{css}">{met}/{len(budgets)}</span>', str(met - len(budgets))


def tests_section(report: Mapping[str, Any]) -> str:
    """Every test, sortable and filterable by the page's script (readable without it)."""
    rows = []
    for test in report["tests"]:
        outcome = test["outcome"]
        fired = test.get("faults") or {}
        budgets, budget_key = _budget_cell(test)
        checks = test.get("verdicts") or []
        bad_checks = sum(not v["passed"] for v in checks)
        rows.append(
            f'<tr data-outcome="{escape(outcome)}"><td><code>{escape(test["nodeid"])}</code>'
            f'</td><td class="{"fail" if outcome in _BAD else outcome}">{escape(outcome)}</td>'
            f'<td data-key="{test["duration"]:.6f}">{test["duration"]:.3f}s</td>'
            f'<td data-key="{sum(fired.values())}">{_families(fired) if fired else ""}</td>'
            f'<td data-key="{budget_key}">{budgets}</td>'
            f'<td data-key="{len(checks) - 2 * bad_checks}">'
            f"{f'{len(checks) - bad_checks}/{len(checks)}' if checks else ''}</td></tr>")
    options = "".join(f'<option value="{o}">{o}</option>' for o in _OUTCOMES)
    head = "".join(f'<th scope="col" data-sort="{kind}">{name}</th>' for name, kind in (
        ("test", "text"), ("outcome", "text"), ("duration", "num"),
        ("faults fired", "num"), ("budgets met", "num"), ("checks passed", "num")))
    return (
        f'<section id="tests"><h2>Tests ({len(rows)})</h2>'
        '<div class="filters" hidden><input id="test-filter" type="search" '
        'placeholder="filter by name or fault family" aria-label="filter tests">'
        '<select id="outcome-filter" aria-label="outcome"><option value="">every outcome'
        f'</option>{options}</select> <span id="test-count"></span></div>'
        f'<table id="test-table" class="sortable"><thead><tr>{head}</tr></thead><tbody>'
        f"{''.join(rows)}</tbody></table></section>")


def error_type(message: str) -> str:
    """The exception's class name at the start of a failure message (else ``other``)."""
    match = _ERROR.match(message.strip())
    return match.group(1).rsplit(".", 1)[-1] if match else "other"


def errors_section(report: Mapping[str, Any]) -> str:
    """Failing tests by exception type, and failed calls per operation and variant."""
    types: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for test in report["tests"]:
        if test["outcome"] in _BAD:
            kind = error_type(str((test.get("failure") or {}).get("message", "")))
            types[kind] += 1
            examples.setdefault(kind, test["nodeid"])
    calls = [op for op in report["operations"] if op["errors"]]
    if not types and not calls:
        return ""
    parts = ['<section id="errors"><h2>Errors by type</h2>']
    if types:
        rows = "".join(f"<tr><td><code>{escape(k)}</code></td><td>{n}</td><td><code>"
                       f"{escape(examples[k])}</code></td></tr>" for k, n in types.most_common())
        parts.append('<table class="compact"><tr><th>failing tests raised</th><th>tests</th>'
                     f"<th>first</th></tr>{rows}</table>")
    if calls:
        rows = "".join(f"<tr><td><code>{escape(op['operation'])}</code></td><td>"
                       f"{escape(op['variant'])}</td><td>{op['errors']}</td><td>"
                       f"{(op.get('error_rate') or 0):.2%}</td></tr>" for op in calls)
        parts.append('<table class="compact"><tr><th>operation</th><th>variant</th>'
                     f"<th>failed calls</th><th>error rate</th></tr>{rows}</table>")
    return "".join(parts) + "</section>"


def budgets_section(report: Mapping[str, Any]) -> str:
    """Every SLA budget and checker verdict, broken ones first."""
    rows = [(t["nodeid"], b) for t in report["tests"]
            for b in (t.get("sla") or {}).get("budgets", [])]
    verdicts = [(t["nodeid"], v) for t in report["tests"] for v in t.get("verdicts", [])]
    if not rows and not verdicts:
        return ""
    parts = ['<section id="budgets"><h2>Budgets and checks</h2>']
    if rows:
        body = "".join(
            f"<tr><td><code>{escape(n)}</code></td><td><code>{escape(b['budget'])}</code></td>"
            f"<td>{escape(str(b.get('operation') or 'all'))}</td><td>{escape(b['reason'])}</td>"
            f'<td class="{_VERDICT_CSS[b["passed"]]}">{_VERDICT_WORD[b["passed"]]}</td></tr>'
            for n, b in sorted(rows, key=lambda r: r[1]["passed"] is True))
        parts.append('<table class="compact"><tr><th>test</th><th>budget</th><th>operation'
                     f"</th><th>observed</th><th>verdict</th></tr>{body}</table>")
    if verdicts:
        body = "".join(
            f"<tr><td><code>{escape(n)}</code></td><td>{escape(v['checker'])}</td>"
            f'<td class="{"pass" if v["passed"] else "fail"}">'
            f"{'passed' if v['passed'] else escape(v['explanation'])}</td></tr>"
            for n, v in sorted(verdicts, key=lambda r: r[1]["passed"] is True))
        parts.append('<table class="compact"><tr><th>test</th><th>checker</th><th>verdict'
                     f"</th></tr>{body}</table>")
    return "".join(parts) + "</section>"


def chaos_section(report: Mapping[str, Any]) -> str:
    """Chaos runs: plans run, failures with the minimal plan and its replay command."""
    tests = [t for t in report["tests"] if t.get("chaos")]
    if not tests:
        return ""
    rows, details = [], []
    for test in tests:
        c = test["chaos"]
        fired = c.get("fired") or {}
        rows.append(
            f"<tr><td><code>{escape(test['nodeid'])}</code></td><td>{c.get('plans', 0)}</td>"
            f'<td class="{"fail" if c.get("failures") else "pass"}">{c.get("failures", 0)}'
            f"</td><td>{_families(fired)}</td></tr>")
        if c.get("failures"):
            plan = c.get("plan")
            details.append(
                f'<article class="failure"><h3><code>{escape(test["nodeid"])}</code></h3>'
                f"<p>{escape(str(c.get('error') or ''))}</p>"
                + (f"<p>minimal fault plan:</p><pre>{escape(json.dumps(plan, indent=2))}</pre>"
                   if plan else "")
                + (f'<p>replay: <code class="replay">{escape(str(c["replay"]))}</code></p>'
                   if c.get("replay") else "") + "</article>")
    return ('<section id="chaos"><h2>Chaos runs</h2><table class="compact"><tr><th>test</th>'
            "<th>plans run</th><th>failing</th><th>faults fired (by source)</th></tr>"
            f"{''.join(rows)}</table>{''.join(details)}</section>")


def _matrix(value: Any) -> str:
    """A mapping of mappings as a table (rows x columns), anything else as JSON."""
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping)
                                                    for v in value.values()):
        columns = list(dict.fromkeys(k for row in value.values() for k in row))
        head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
        body = "".join(
            f"<tr><th>{escape(str(r))}</th>" + "".join(
                f'<td class="{"zero" if not row.get(c) else ""}">{escape(str(row.get(c, "")))}'
                "</td>" for c in columns) + "</tr>"
            for r, row in value.items())
        return f'<table class="compact matrix"><tr><th></th>{head}</tr>{body}</table>'
    return f"<pre>{escape(json.dumps(value, indent=2, default=str))}</pre>"


def coverage_section(report: Mapping[str, Any]) -> str:
    """Which fault families the run exercised (armed, fired, in how many tests), and
    each test's own ``coverage`` matrix where its record has one."""
    from pytest_resilience.kinds import FAULT_FAMILIES

    fired: Counter[str] = Counter()
    armed: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    for test in report["tests"]:
        fired.update(test.get("faults") or {})
        armed.update(test.get("faults_armed") or {})
        tests.update(set(test.get("faults") or {}) | set(test.get("faults_armed") or {}))
    if not fired and not armed and not any(t.get("coverage") for t in report["tests"]):
        return ""
    families = list(FAULT_FAMILIES) + sorted((set(fired) | set(armed)) - set(FAULT_FAMILIES))
    rows = "".join(
        f'<tr class="{"" if tests[f] else "zero"}"><td>{escape(f)}</td><td>{tests[f]}</td>'
        f"<td>{armed[f]}</td><td>{fired[f]}</td></tr>" for f in families)
    own = "".join(f'<h3><code>{escape(t["nodeid"])}</code></h3>{_matrix(t["coverage"])}'
                  for t in report["tests"] if t.get("coverage"))
    return ('<section id="coverage"><h2>Fault coverage</h2><table class="compact"><tr><th>'
            "family</th><th>tests</th><th>armed</th><th>fired</th></tr>"
            f"{rows}</table>{own}</section>")


def environment_section(report: Mapping[str, Any]) -> str:
    """Python, platform, pytest, CPUs and workers."""
    env = " · ".join(f"{escape(str(k))} {escape(str(v))}"
                     for k, v in report["environment"].items())
    return f'<footer id="environment"><h2>Environment</h2><p>{env}</p></footer>'
