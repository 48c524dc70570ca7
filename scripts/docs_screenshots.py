"""Screenshots of a report.html for the docs: ``python scripts/docs_screenshots.py
reports/examples/report.html docs/images``.

Writes ``report-desktop.png`` (1280 px wide, the first screen), ``report-phone.png``
(390 px) and ``report-operation.png`` (the tutorial's ``sentiment`` operation), taken
with headless Chromium over the DevTools protocol (``tests/reports/_browser.py``).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(html: Path, out: Path, operation: str = "sentiment") -> None:
    """Take the three screenshots of ``html`` into ``out``."""
    spec = importlib.util.spec_from_file_location("browser", ROOT / "tests/reports/_browser.py")
    assert spec is not None
    assert spec.loader is not None
    browser_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(browser_module)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not on PATH (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    with (tempfile.TemporaryDirectory() as profile,
          browser_module.Browser(chromium, Path(profile)) as browser):
        for name, width, height in (("desktop", 1280, 860), ("phone", 390, 844)):
            browser.page(html.resolve().as_uri(), width=width, height=height)
            (out / f"report-{name}.png").write_bytes(
                browser.screenshot(width=width, height=height))
        browser.page(html.resolve().as_uri(), width=1180, height=900)
        box = browser.evaluate(
            f"(() => {{ const r = document.getElementById('op-{operation}')"
            ".getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, "
            "r.width, r.height]; })()")
        x, y, width, height = box
        (out / "report-operation.png").write_bytes(
            browser.screenshot(x=x - 8, y=y - 8, width=width + 16, height=height + 16))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:])
