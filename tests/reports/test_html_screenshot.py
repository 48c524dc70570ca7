"""Open report.html in headless Chromium and check the screenshot shows the charts."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct RGB colours of an 8-bit RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    assert colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        ftype, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            left = cur[i - bpp] if i >= bpp else 0
            up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                cur[i] = (cur[i] + left) & 0xFF
            elif ftype == 2:
                cur[i] = (cur[i] + up) & 0xFF
            elif ftype == 3:
                cur[i] = (cur[i] + (left + up) // 2) & 0xFF
            elif ftype == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else ul
                cur[i] = (cur[i] + pred) & 0xFF
        if y % 4 == 0:
            colours.update(bytes(cur[i : i + 3]) for i in range(0, stride, bpp * 2))
        prev = cur
    return width, height, colours


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium)")
def test_report_html_renders_charts_in_headless_chromium(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from faults import Action, Trigger, failpoint

        @pytest.mark.sla("p95<=50ms", clock="virtual")
        def test_base(sla, clock):
            for i in range(400):
                with sla.measure("search"):
                    clock.advance(0.001 * (1 + i % 20))

        @pytest.mark.sla("p95<=50ms", clock="virtual")
        def test_faulted(sla, clock, faults, history):
            faults.inject("search", Action.delay(0.040), trigger=Trigger.rate(0.2))
            for i in range(400):
                with sla.measure("search"):
                    failpoint("search")
                    clock.advance(0.001 * (1 + i % 20))
        """
    )
    pytester.runpytest("--resilience-report=out").assert_outcomes(passed=1, failed=1)
    html = pytester.path / "out" / "report.html"
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=900,1400",
            f"--screenshot={shot}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    width, height, colours = _png_pixels(shot)
    assert (width, height) == (900, 1400)
    assert len(colours) > 20  # text, axes and two series: not a blank page
    has_red = any(c[0] > 180 and c[1] < 90 and c[2] < 90 for c in colours)
    has_blue = any(c[2] > 150 and c[0] < 80 for c in colours)
    assert has_red
    assert has_blue
