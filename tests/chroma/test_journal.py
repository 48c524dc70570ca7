"""The journal format: a cut anywhere loses only the unfinished line; damage is named."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience.chroma._journal import frame, read_journal

HEADER = {"journal": 2, "collection": "c", "store": "/s", "store_id": "x"}

entries = st.lists(
    st.dictionaries(st.text(min_size=1, max_size=6),
                    st.none() | st.fixed_dictionaries({"document": st.text(max_size=20)}),
                    min_size=1, max_size=3).map(lambda saved: {"saved": saved}),
    min_size=1, max_size=6)


def _write(tmp: Path, items: list[dict[str, object]]) -> tuple[Path, bytes]:
    path = tmp / "tx.jsonl"
    data = b"".join(frame(e) for e in [HEADER, *items])
    path.write_bytes(data)
    return path, data


def _expected(items: list[dict[str, object]]) -> dict[str, object]:
    saved: dict[str, object] = {}
    for item in items:
        for key, value in item["saved"].items():  # type: ignore[attr-defined]
            saved.setdefault(key, value)
    return saved


@settings(max_examples=100)
@given(items=entries, data=st.data())
def test_a_cut_at_any_byte_keeps_every_complete_line(tmp_path_factory, items, data) -> None:
    path, whole = _write(tmp_path_factory.mktemp("j"), items)
    cut = data.draw(st.integers(0, len(whole)))
    path.write_bytes(whole[:cut])
    journal = read_journal(path)
    lines = whole[:cut].count(b"\n")
    complete = items[:max(0, lines - 1)]
    assert journal.damaged is None
    if lines == 0:
        assert journal.header is None
    else:
        assert journal.header == HEADER
        assert journal.saved == _expected(complete)
    assert (journal.torn is None) == (cut in {0, len(whole)} or whole[cut - 1:cut] == b"\n")


@settings(max_examples=100)
@given(items=entries, data=st.data())
def test_a_flipped_byte_never_passes_for_good_data(tmp_path_factory, items, data) -> None:
    path, whole = _write(tmp_path_factory.mktemp("j"), items)
    at = data.draw(st.integers(len(frame(HEADER)), len(whole) - 2))
    flipped = bytearray(whole)
    flipped[at] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(flipped))
    journal = read_journal(path)
    assert journal.torn is not None or journal.damaged is not None
    for key, value in journal.saved.items():  # whatever is read back is what was written
        assert _expected(items).get(key, "absent") == value


def test_a_commit_record_marks_the_journal_committed(tmp_path: Path) -> None:
    path, _ = _write(tmp_path, [{"saved": {"a": None}}, {"commit": True}])
    journal = read_journal(path)
    assert journal.committed
    assert journal.saved == {"a": None}


def test_an_unframed_journal_is_recognised_as_legacy(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text('{"journal": 1, "collection": "c", "store": "/s"}\n{"saved": {}}\n')
    journal = read_journal(path)
    assert journal.legacy
    assert journal.header is None
