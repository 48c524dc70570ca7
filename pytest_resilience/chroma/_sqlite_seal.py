"""Seal ``chroma.sqlite3`` byte for byte, minus exactly what chroma rewrites on every open.

Measured with chromadb 1.5.9: opening a store (even to read) changes the SQLite header's
file change counter (bytes 24-27), version-valid-for (92-95) and, when another SQLite
library wrote the file last (a backup copy), the writer's version number (96-99); and it
appends one row ``(rowid, 1)`` to the ``acquire_write`` table, which grows that table's
leaf page: its cell count and content-start fields, one cell pointer and one 5-byte cell.
Everything else must be identical to the seal, including the rest of those pages.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["VOLATILE_HEADER", "sqlite_changes", "sqlite_seal"]

#: Header byte ranges SQLite rewrites on every write transaction.
VOLATILE_HEADER = ((24, 28), (92, 100))
_LEAF = 0x0D
_MAX_VARINT = 9


def sqlite_seal(path: Path) -> dict[str, Any]:
    """``{"content": digest, "volatile": {page number: base64 bytes}}`` of the file.

    The digest covers every byte except the volatile header fields and the pages of the
    ``acquire_write`` table, which are kept whole so ``sqlite_changes`` can tell
    chroma's own appends from damage.
    """
    data = path.read_bytes()
    size = _page_size(data)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            pages = sorted(int(r[0]) for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'acquire_write'"))
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        pages = []
    volatile = {str(n): base64.b64encode(data[(n - 1) * size:n * size]).decode()
                for n in pages}
    return {"content": _digest(data, size, set(pages)), "volatile": volatile}


def sqlite_changes(path: Path, sealed: dict[str, Any]) -> list[str]:
    """What changed in the file since ``sealed`` (a ``sqlite_seal``), beyond chroma's opens."""
    data = path.read_bytes()
    size = _page_size(data)
    volatile: dict[str, str] = sealed.get("volatile", {})
    problems: list[str] = []
    if _digest(data, size, {int(n) for n in volatile}) != sealed["content"]:
        problems.append("content changed since the seal")
    for number, encoded in sorted(volatile.items(), key=lambda kv: int(kv[0])):
        start = (int(number) - 1) * size
        why = _growth_problem(base64.b64decode(encoded), data[start:start + size])
        if why:
            problems.append(f"page {number} (acquire_write) {why}")
    return problems


def _page_size(data: bytes) -> int:
    if len(data) < 100:
        return 4096
    raw = int.from_bytes(data[16:18], "big")
    return 65536 if raw == 1 else raw or 4096


def _digest(data: bytes, size: int, skip: set[int]) -> str:
    masked = bytearray(data)
    for lo, hi in VOLATILE_HEADER:
        masked[lo:hi] = bytes(hi - lo)
    digest = hashlib.sha256()
    for number, start in enumerate(range(0, len(masked), size), start=1):
        if number not in skip:
            digest.update(masked[start:start + size])
    return digest.hexdigest()


def _growth_problem(old: bytes, new: bytes) -> str | None:
    """``None`` when ``new`` is ``old`` plus rows appended the way chroma's open does."""
    if new == old:
        return None
    if len(new) != len(old) or old[0] != _LEAF:
        return "changed since the seal"
    n_old, n_new = _u16(old, 3), _u16(new, 3)
    top_old, top_new = _u16(old, 5) or 65536, _u16(new, 5) or 65536
    ptrs_old, ptrs_new = 8 + 2 * n_old, 8 + 2 * n_new
    if (new[:3] != old[:3] or new[7] != old[7] or n_new < n_old
            or not ptrs_new <= top_new <= top_old
            or new[8:ptrs_old] != old[8:ptrs_old]
            or new[ptrs_new:top_new] != old[ptrs_new:top_new]
            or new[top_old:] != old[top_old:]):
        return ("changed outside the rows chroma appends on open (if the table outgrew "
                "its page, seal again after a clean close)")
    last = max((_rowid(old, _u16(old, 8 + 2 * i)) for i in range(n_old)), default=0)
    expected = top_old
    for i in range(n_old, n_new):
        cell = _u16(new, 8 + 2 * i)
        if not top_new <= cell < expected - 4:
            return f"has a cell pointer ({cell}) outside the appended rows"
        rowid = _rowid(new, cell)
        body = cell + 1 + _varint_len(new, cell + 1)
        if (new[cell] != 3 or rowid <= last
                or new[body:body + 3] not in (b"\x03\x00\x08", b"\x03\x00\x09")):
            return f"holds a cell at offset {cell} that is not an acquire_write row"
        expected -= body + 3 - cell
        if cell != expected:
            return f"holds a cell at offset {cell} out of place"
        last = rowid
    if expected != top_new:
        return "has bytes in its cell area that no appended row explains"
    return None


def _u16(page: bytes, at: int) -> int:
    return int.from_bytes(page[at:at + 2], "big")


def _varint_len(page: bytes, at: int) -> int:
    for i in range(_MAX_VARINT - 1):
        if at + i >= len(page) or page[at + i] < 0x80:
            return i + 1
    return _MAX_VARINT


def _rowid(page: bytes, cell: int) -> int:
    """The rowid of the table-leaf cell at ``cell`` (after its 1-byte payload size)."""
    value = 0
    for i, byte in enumerate(page[cell + 1:cell + 1 + _varint_len(page, cell + 1)]):
        value = (value << 8 | byte) if i == _MAX_VARINT - 1 else (value << 7 | byte & 0x7F)
    return value
