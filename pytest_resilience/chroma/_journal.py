"""The transaction journal's file format: framed JSON lines, like a write-ahead log.

Each line is ``<length> <crc32> <json>\\n``: the byte length and CRC-32 (8 hex digits)
of the JSON that follows. A line whose length or checksum does not match, or that has
no newline, was not completely written. When nothing valid follows it, it is the torn
tail of a writer that died while appending: the journal protocol writes (and fsyncs)
an entry before the write it describes, so the ids of a torn entry were never changed
and the entry is skipped. A damaged line *followed* by valid ones is damage, not a torn
write, and is reported as such.

The first line is the header (``journal`` format version, store path and identity,
collection name and id); then ``{"saved": {...}}`` entries; a committed transaction
appends ``{"commit": true}`` before its journal is removed, so a journal that outlives
its commit is never applied.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_resilience.chroma._files import SIDE_DIR

__all__ = [
    "JOURNAL_DIR",
    "JOURNAL_VERSION",
    "STORE_ID",
    "Journal",
    "append",
    "frame",
    "read_journal",
    "store_id",
]

JOURNAL_DIR = f"{SIDE_DIR}/journal"
JOURNAL_VERSION = 2
#: A random identity of the store, made by its first transaction; a restore replaces
#: the whole directory, so journals from before it never match the store after it.
STORE_ID = f"{SIDE_DIR}/store-id"

Saved = dict[str, dict[str, Any] | None]


def frame(entry: dict[str, Any]) -> bytes:
    """One journal line for ``entry``."""
    payload = json.dumps(entry, separators=(",", ":"), default=_plain).encode()
    return b"%d %08x " % (len(payload), zlib.crc32(payload)) + payload + b"\n"


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def fsync_dir(path: Path) -> None:
    """Make a new or removed directory entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(path: Path, entries: list[dict[str, Any]], *, durable: bool) -> None:
    """Append framed ``entries`` in one write; fsync (and the new file's entry) if
    ``durable``."""
    new = not path.exists()
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as fh:
        fh.write(b"".join(frame(e) for e in entries))
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    if new and durable:
        fsync_dir(path.parent)


def store_id(store: Path, *, create: bool) -> str | None:
    """The store's identity (made now when ``create`` and missing); hold its lock."""
    path = store / STORE_ID
    try:
        return path.read_text("utf-8").strip() or None
    except FileNotFoundError:
        if not create:
            return None
    made = uuid.uuid4().hex
    tmp = path.with_name(f".{path.name}.{made}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(made + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)
    return made


@dataclass
class Journal:
    """One journal as read back: what it saved, and what could not be read."""

    path: Path
    header: dict[str, Any] | None
    saved: Saved = field(default_factory=dict)
    committed: bool = False
    legacy: bool = False
    torn: str | None = None  # the skipped torn tail, described
    damaged: str | None = None  # a bad line with valid lines after it, described


def _parse(line: bytes) -> dict[str, Any] | None:
    """The entry in one complete line, or ``None`` when it does not verify."""
    head, _, rest = line.partition(b" ")
    crc, _, payload = rest.partition(b" ")
    try:
        ok = int(head) == len(payload) and int(crc, 16) == zlib.crc32(payload)
        entry = json.loads(payload) if ok else None
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def read_journal(path: Path) -> Journal:
    """Read every line of ``path`` that verifies; say what did not, and whether that is a
    torn tail (nothing verifies after it) or damage."""
    data = path.read_bytes()
    journal = Journal(path, None)
    if data.startswith(b"{"):
        journal.legacy = True  # written before lines were framed: nothing can be verified
        return journal
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    entries: list[tuple[int, dict[str, Any]]] = []
    bad: list[int] = []
    for number, line in enumerate(lines, start=1):
        entry = _parse(line)
        if entry is None:
            bad.append(number)
        else:
            entries.append((number, entry))
    later = [n for n, _ in entries if bad and n > bad[0]]
    if later:
        journal.damaged = (f"line {bad[0]} does not verify, yet line {later[0]} after it "
                           "does: the file was damaged, not torn")
    elif bad:
        start = sum(len(x) + 1 for x in lines[:bad[0] - 1])
        journal.torn = (f"line {bad[0]} (the last {len(data) - start} bytes) was never "
                        "completely written")
    elif tail:
        journal.torn = f"the last {len(tail)} bytes have no line end (an unfinished write)"
    if entries and entries[0][0] == 1:  # the header is line 1, or it is missing
        journal.header = entries.pop(0)[1]
        _collect(journal, [entry for _, entry in entries])
    return journal


def _collect(journal: Journal, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if entry.get("commit") is True:
            journal.committed = True
        saved = entry.get("saved")
        if isinstance(saved, dict):
            for rid, state in saved.items():  # the first image of an id is its before
                journal.saved.setdefault(rid, state)
