"""Property: random transactions failing at random points leave exactly the committed writes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults.chroma import fail_during
from pytest_resilience._errors import FaultInjected
from pytest_resilience.chroma._transaction import transaction

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

POOL = [f"rec-{i:05d}" for i in range(6)] + [f"p-{i}" for i in range(6)]
OPS = ("add", "upsert", "update", "delete")

op_strategy = st.tuples(st.sampled_from(OPS),
                        st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True),
                        st.integers(0, 7))
tx_strategy = st.tuples(st.lists(op_strategy, min_size=1, max_size=4),
                        st.none() | st.tuples(st.integers(0, 3), st.integers(0, 3)))


def _apply(model: dict[str, tuple[float, ...]], op: str, ids: list[str], vec) -> list[str]:
    """Apply one write to the model; returns the ids the real call must get."""
    if op == "update":
        ids = [i for i in ids if i in model]
    for i in ids:
        if op == "delete":
            model.pop(i, None)
        elif op == "add":
            model.setdefault(i, vec)
        else:
            model[i] = vec
    return ids


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(txs=st.lists(tx_strategy, min_size=1, max_size=3))
def test_store_equals_model_of_committed_writes(chroma_store, txs) -> None:
    col = chroma_store.collection()

    def read() -> dict[str, tuple[float, ...]]:
        return {rid: emb for rid, (emb, _, _) in chroma_store.snapshot().items()}

    model = read()
    for ops, failure in txs:
        pending = dict(model)
        before = chroma_store.snapshot()  # documents and metadatas too
        try:
            with transaction(col) as tx:
                for index, (op, ids, value) in enumerate(ops):
                    vec = tuple([value / 8] * 8)
                    real_ids = _apply(pending, op, ids, vec)
                    if not real_ids:
                        continue
                    kwargs = {} if op == "delete" else {"embeddings": [list(vec)] * len(real_ids)}
                    if failure is not None and failure[0] == index:
                        with fail_during(col, op, after=failure[1]):
                            getattr(tx, op)(real_ids, **kwargs)
                    else:
                        getattr(tx, op)(real_ids, **kwargs)
        except FaultInjected:
            assert chroma_store.snapshot() == before  # every field of every record is back
        else:
            model = pending
        assert read() == model
