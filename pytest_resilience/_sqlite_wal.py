"""What SQLite will silently drop from a write-ahead log: the torn or unfinished tail.

SQLite replays ``<db>-wal`` up to its last valid commit frame and ignores the rest
without a word. That rest is a transaction that never finished (its writer died, or
the file was cut short); a caller that wants to *say* a write was lost reads the log
itself: the header's salts mark frames of the current generation, and each frame's
cumulative checksum says whether it is whole. Frames of an older generation (left
after the log restarted) are normal and not reported.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WalTail", "torn_tail"]

_HEADER = 32
_FRAME_HEADER = 24
_MAGIC_LE, _MAGIC_BE = 0x377F0682, 0x377F0683
_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class WalTail:
    """Bytes and frames after the last commit that SQLite will discard."""

    path: str
    frames: int  # whole frames of the current generation that no commit covers
    bytes: int  # bytes from the end of the last commit to the end of the log
    reason: str


def _checksum(data: bytes, s0: int, s1: int, big_endian: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & _MASK
        s1 = (s1 + words[i + 1] + s0) & _MASK
    return s0, s1


def torn_tail(db_path: Path | str) -> WalTail | None:
    """The discarded tail of ``<db_path>-wal``, or ``None`` when the log ends cleanly.

    Read it while holding SQLite's write lock (``BEGIN IMMEDIATE``), so no live writer
    is halfway through appending a frame.
    """
    wal = Path(f"{db_path}-wal")
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _HEADER:
        return None
    magic, _version, page_size, _seq, salt1, salt2, c0, c1 = struct.unpack(">8I",
                                                                          data[:_HEADER])
    if magic not in (_MAGIC_LE, _MAGIC_BE) or page_size < 512 or page_size & (page_size - 1):
        return None  # not a log SQLite would replay either: nothing it drops silently
    big = magic == _MAGIC_BE
    s0, s1 = _checksum(data[:24], 0, 0, big)
    if (s0, s1) != (c0, c1):
        return None  # an invalid header: SQLite ignores the whole log (and says nothing)
    frame_size = _FRAME_HEADER + page_size
    end_of_commit = offset = _HEADER
    pending = 0
    reason = ""
    while offset + _FRAME_HEADER <= len(data):
        _page, commit, f_salt1, f_salt2, f0, f1 = struct.unpack(
            ">6I", data[offset:offset + _FRAME_HEADER])
        if (f_salt1, f_salt2) != (salt1, salt2):
            break  # an older generation's frame: the current log ends before it
        if offset + frame_size > len(data):
            reason = "a frame was cut short"
            break
        s0, s1 = _checksum(data[offset:offset + 8], s0, s1, big)
        s0, s1 = _checksum(data[offset + _FRAME_HEADER:offset + frame_size], s0, s1, big)
        if (s0, s1) != (f0, f1):
            reason = "a frame's checksum does not match"
            break
        offset += frame_size
        pending += 1
        if commit:
            end_of_commit, pending = offset, 0
    if not reason and pending:
        reason = "a transaction has no commit frame"
    if not reason:
        return None
    ends = {"a frame was cut short": len(data),
            "a frame's checksum does not match": offset + frame_size}
    return WalTail(str(wal), pending, ends.get(reason, offset) - end_of_commit, reason)
