"""report.html in headless Chromium, at desktop and phone widths: what a person sees.

The page is opened through the DevTools protocol; each check finds an element, takes a
screenshot of exactly where it is drawn and asserts on the pixels there: the failing
test's name is on screen without scrolling, a budget line is drawn in its colour, a
fault window is shaded. The script's sorting and filtering are checked by using them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest
from faults import Action, Trigger, failpoint

@pytest.mark.sla("search: p95<=20ms", clock="virtual")
def test_search_holds(sla, clock):
    for i in range(400):
        with sla.measure("search"):
            clock.advance(0.001 * (1 + i % 10))

@pytest.mark.sla("search: p95<=20ms", clock="virtual")
def test_search_under_a_slow_index(sla, clock, faults):
    for i in range(400):
        if i == 150:
            slow = faults.inject("index.read", Action.delay(0.040), trigger=Trigger.rate(0.5))
        if i == 300:
            slow.stop()
        with sla.measure("search"):
            failpoint("index.read")
            clock.advance(0.001 * (1 + i % 10))

def test_plain():
    pass
"""
FAILING = "test_search_under_a_slow_index"
PURPLE = (106, 27, 154)  # _svg.BUDGET_COLOUR
SHADE = (255, 230, 201)  # _svg.WINDOW_FILL at 35% over white
Pixels = list[list[tuple[int, int, int]]]


@pytest.fixture
def report_html(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--resilience-report=out", "--resilience-seed=3")
    result.assert_outcomes(passed=2, failed=1)
    return pytester.path / "out" / "report.html"


def _near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


def _box(browser: Any, selector: str, *, text: str = "", scroll: bool = False) -> dict[str, Any]:
    """The element's box in the viewport and in the page, and whether it is the element
    actually drawn at its own centre (not hidden under another)."""
    found: dict[str, Any] = browser.evaluate(
        f"""(() => {{
        const el = [...document.querySelectorAll({json.dumps(selector)})]
          .find(e => e.textContent.includes({json.dumps(text)}));
        if (!el) return null;
        if ({json.dumps(scroll)}) el.scrollIntoView({{block: "center"}});
        const r = el.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return {{left: r.left, top: r.top, width: r.width, height: r.height,
                 pageY: r.top + window.scrollY, pageX: r.left + window.scrollX,
                 visible: !!hit && (el.contains(hit) || hit.contains(el) ||
                                    el.closest("svg") === hit.closest("svg")),
                 vw: window.innerWidth, vh: window.innerHeight}};
        }})()""")
    assert found is not None, f"no {selector} containing {text!r}"
    return found


def _shot(browser: Any, decode: Callable[[bytes], Pixels], box: dict[str, Any], *,
          pad: float = 0.0) -> Pixels:
    return decode(browser.screenshot(x=box["pageX"] - pad, y=box["pageY"] - pad,
                                     width=max(box["width"] + 2 * pad, 1),
                                     height=max(box["height"] + 2 * pad, 1)))


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_what_a_person_sees(report_html: Path, browser: Any,
                            decode_png: Callable[[bytes], Pixels], width: int,
                            height: int) -> None:
    browser.page(report_html.as_uri(), width=width, height=height)

    # The verdict and the failing test's name are on the first screen, unscrolled.
    banner = _box(browser, "#verdict .badge")
    assert browser.evaluate("document.querySelector('#verdict .badge').textContent") == "FAILED"
    assert banner["visible"]
    name = _box(browser, "#failures h3 code", text=FAILING)
    assert name["visible"]
    assert name["top"] >= 0
    assert name["top"] + name["height"] <= name["vh"]
    assert name["left"] + name["width"] <= name["vw"] + 1  # wrapped, not cut off
    dark = sum(sum(c) < 300 for row in _shot(browser, decode_png, name) for c in row)
    assert dark > 30  # the name is drawn as text, not only laid out

    # A budget line, drawn in the budget colour where its element is.
    line = _box(browser, "#op-search .budget-line line", scroll=True)
    assert line["visible"]
    pixels = _shot(browser, decode_png, line, pad=2)
    assert sum(_near(c, PURPLE, 60) for row in pixels for c in row) > 20

    # The fault window shaded behind the samples of the test that armed it.
    window = _box(browser, ".fault-window rect", scroll=True)
    assert window["visible"]
    assert window["width"] > 0.2 * min(width, 760) * 0.8  # calls 150-299 of 400
    pixels = _shot(browser, decode_png, window)
    shaded = sum(_near(c, SHADE, 25) for row in pixels for c in row)
    assert shaded > 0.5 * sum(len(row) for row in pixels)

    # Every chart fits the width: nothing needs sideways scrolling but the wide tables.
    widest = browser.evaluate(
        "Math.max(...[...document.querySelectorAll('svg.chart')]"
        ".map(s => s.getBoundingClientRect().right))")
    assert widest <= width


def test_tests_table_sorts_and_filters(report_html: Path, browser: Any) -> None:
    html = report_html.read_text(encoding="utf-8")
    assert html.count("<tr data-outcome=") == 3  # every row is in the page without the script
    assert '<div class="filters" hidden>' in html
    browser.page(report_html.as_uri(), width=1280, height=900)
    names = "[...document.querySelectorAll('#test-table tbody tr')].filter(r => !r.hidden)" \
            ".map(r => r.cells[0].textContent.split('::')[1])"
    assert browser.evaluate(names) == ["test_plain", "test_search_holds", FAILING]
    browser.evaluate("document.querySelector('#test-table th[data-sort=num]').click()")
    durations = browser.evaluate(
        "[...document.querySelectorAll('#test-table tbody tr')]"
        ".map(r => parseFloat(r.cells[2].dataset.key))")
    assert durations == sorted(durations)
    browser.evaluate("""(() => { const s = document.getElementById('outcome-filter');
        s.value = 'failed'; s.dispatchEvent(new Event('change')); })()""")
    assert browser.evaluate(names) == [FAILING]
    assert browser.evaluate("document.getElementById('test-count').textContent") == \
        "1 of 3 tests"
    browser.evaluate("""(() => { const s = document.getElementById('outcome-filter');
        s.value = ''; s.dispatchEvent(new Event('change'));
        const t = document.getElementById('test-filter'); t.value = 'holds plain';
        t.dispatchEvent(new Event('input')); })()""")
    assert browser.evaluate(names) == []  # every word must match
    browser.evaluate("""(() => { const t = document.getElementById('test-filter');
        t.value = 'failpoint'; t.dispatchEvent(new Event('input')); })()""")
    assert browser.evaluate(names) == [FAILING]  # faults fired by family are searchable
