"""faults.chroma: corruption modes touch only the given store and undo; partial writes; kills."""

from __future__ import annotations

import shutil

import pytest

from faults.chroma import MODES, classify, corrupt, fail_during, kill_during, probe
from pytest_resilience._errors import FaultInjected
from pytest_resilience._events import History, recording
from pytest_resilience.chroma._files import checksum_files

pytest.importorskip("chromadb", reason="Chroma fault tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")


def _tree(path):
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_changes_only_its_store_and_undoes(chroma_store, tmp_path, mode) -> None:
    chroma_store.close()
    sibling = tmp_path / "sibling"
    shutil.copytree(chroma_store.path, sibling)
    before, sibling_before = _tree(chroma_store.path), _tree(sibling)
    with corrupt(chroma_store.path, mode, seed=3) as damage:
        assert damage.files
        assert checksum_files(chroma_store.path) != checksum_files(sibling)
    assert _tree(chroma_store.path) == before
    assert _tree(sibling) == sibling_before


def test_same_seed_same_damage(chroma_store, tmp_path) -> None:
    chroma_store.close()
    twin = tmp_path / "twin"
    shutil.copytree(chroma_store.path, twin)
    a = corrupt(chroma_store.path, "sqlite-bitflip", seed=7)
    b = corrupt(twin, "sqlite-bitflip", seed=7)
    assert a.detail == b.detail
    name = "chroma.sqlite3"
    assert (chroma_store.path / name).read_bytes() == (twin / name).read_bytes()
    a.undo()
    b.undo()


def test_outcomes_are_classified_in_a_child(chroma_store) -> None:
    chroma_store.close()
    assert str(classify(chroma_store.path)) == "ok"
    with corrupt(chroma_store.path, "sqlite-reset") as damage:
        outcome = damage.outcome()
    assert (outcome.kind, outcome.detail) == ("silent_divergence", "collection 'memories' is gone")
    with corrupt(chroma_store.path, "header-delete") as damage:
        outcome = damage.outcome()
    assert outcome.kind == "clean_error"
    assert "Error loading hnsw index" in outcome.detail or "hnsw" in outcome.detail.lower()
    with corrupt(chroma_store.path, "sqlite-zero-page", table="migrations") as damage:
        outcome = damage.outcome()
    assert outcome.kind in {"panic", "clean_error"}  # chroma 1.5.9 panics here


def test_baseline_from_an_explicit_probe(chroma_store) -> None:
    chroma_store.close()
    healthy = probe(chroma_store.path)
    assert healthy.collections["memories"]["rows"] == 300
    with corrupt(chroma_store.path, "length-bitflip", seed=1) as damage:
        assert str(damage.outcome(baseline=healthy)) == "ok"  # chromadb alone sees nothing


def test_events_are_recorded(chroma_store) -> None:
    chroma_store.close()
    history = History()
    with recording(history), corrupt(chroma_store.path, "segment-delete"):
        pass
    kinds = [(e.kind, e.attrs.get("mode"), e.attrs.get("outcome")) for e in history]
    assert kinds == [("fault.armed", None, None),
                     ("chroma.corrupt", "segment-delete", "injected"),
                     ("fault.fired", None, None),
                     ("chroma.corrupt", "segment-delete", "undone"),
                     ("fault.disarmed", None, None)]
    assert {e.source for e in history} == {"chroma:store"}  # never the temporary path
    assert {e.attrs["family"] for e in history.select("fault.")} == {"chroma"}


def test_bad_arguments_name_the_fix(chroma_store, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"^mode='melt' is not a corruption mode\. Pass one of: "):
        corrupt(chroma_store.path, "melt")
    with pytest.raises(ValueError) as info:
        corrupt(tmp_path, "sqlite-reset")
    assert str(info.value) == (f"store={str(tmp_path)!r} is not a Chroma store (no "
                               "chroma.sqlite3). Pass the directory given to "
                               "PersistentClient(path=...).")
    with pytest.raises(ValueError, match="table='x' is not accepted here"):
        corrupt(chroma_store.path, "sqlite-zero-page", table="x")
    with pytest.raises(ValueError, match="op='query' is not a write"), \
            fail_during(chroma_store.collection(), "query"):
        pass


class _Writes:
    """Has the write method ``fail_during`` patches; never called: every case is refused."""

    def add(self, ids=None, **kwargs) -> None:
        raise AssertionError("a refused fault must not reach the collection")

    def __repr__(self) -> str:
        return "<writes>"


@pytest.mark.parametrize(("kwargs", "kind", "message"), [
    ({"op": 3}, TypeError, "op=3 is not a write. Pass add, upsert, update or delete."),
    ({"op": "add", "after": -1}, ValueError, "after=-1 is not a count of records. Pass an int "
     ">= 0."),
    ({"op": "add", "after": "3"}, TypeError, "after='3' is not a count of records. Pass an "
     "int >= 0."),
    ({"op": "add", "exc": ValueError}, TypeError, "exc=<class 'ValueError'> is not an "
     "exception. Pass an exception instance such as TimeoutError('disk'), or None for "
     "FaultInjected."),
    ({"op": "add", "clock": True}, TypeError, "clock=True is not a clock. Pass an object with "
     "monotonic(), time(), sleep() and asleep() (a VirtualClock or SystemClock instance), or "
     "None."),
    ({"op": "upsert"}, TypeError, "collection=<writes> is not a collection with "
     "upsert(). Pass a chromadb Collection."),
])
def test_fail_during_refuses_at_the_call_naming_the_argument(kwargs, kind, message) -> None:
    """Regression (issue 14 item 11): the checks ran only when the block was entered, and
    op/after of the wrong type were not refused clearly (after=10**400's repr raised)."""
    with pytest.raises(kind) as caught:
        fail_during(_Writes(), **kwargs)  # the call itself refuses: never entered
    assert str(caught.value) == message


def test_fail_during_lands_exactly_n_records(chroma_store) -> None:
    col = chroma_store.collection()
    with fail_during(col, "add", after=3) as stats:
        with pytest.raises(FaultInjected, match="Injected failure in add after 3 records"):
            col.add(ids=[f"f-{i}" for i in range(5)], embeddings=[[0.5] * 8] * 5)
        with pytest.raises(FaultInjected):
            col.add(ids=["g-1"], embeddings=[[0.5] * 8])
    assert stats == {"written": 3, "failed": 2}
    got = set(col.get(ids=[f"f-{i}" for i in range(5)] + ["g-1"])["ids"])
    assert got == {"f-0", "f-1", "f-2"}
    col.add(ids=["g-1"], embeddings=[[0.5] * 8])  # undone on exit
    assert col.count() == 304


def test_kill_during_keeps_acknowledged_batches(chroma_store) -> None:
    chroma_store.close()
    report = kill_during(chroma_store.path, "memories", batches=40, batch_size=25,
                         kill_after=2, timeout=60)
    assert report.returncode == -9
    assert len(report.acked) == 50
    asked = list(report.acked) + list(report.in_flight)
    stored = set(chroma_store.collection().get(ids=asked)["ids"])
    assert set(report.acked) <= stored  # acknowledged writes are durable
    assert stored - set(report.acked) <= set(report.in_flight)  # at most the in-flight batch more
