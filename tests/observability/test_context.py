"""Correlation context across asyncio tasks, thread pools and nesting."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience.observability._context import (
    bind,
    correlation,
    current_context,
    current_correlation_id,
    submit_in_context,
)


def test_no_context_outside_a_scope() -> None:
    assert current_correlation_id() is None
    assert dict(current_context()) == {}


def test_scope_sets_and_restores_fields() -> None:
    with correlation("charge", user="u1") as ctx:
        assert ctx["operation"] == "charge"
        assert ctx["user"] == "u1"
        assert len(current_correlation_id() or "") == 32
    assert current_correlation_id() is None


def test_nested_scope_keeps_the_outer_id_and_records_the_parent() -> None:
    with correlation("request", correlation_id="req-1", tenant="t"):
        with correlation("db.query") as inner:
            assert inner["correlation_id"] == "req-1"
            assert inner["operation"] == "db.query"
            assert inner["parent_operation"] == "request"
            assert inner["tenant"] == "t"
        assert current_context()["operation"] == "request"


def test_scope_is_restored_when_the_block_raises() -> None:
    with pytest.raises(KeyError), correlation("x", correlation_id="a"):
        raise KeyError("boom")
    assert current_correlation_id() is None


def test_ids_survive_asyncio_gather_and_stay_separate_per_task() -> None:
    async def handle(request: str) -> tuple[str, str | None, str | None]:
        async with correlation("handle", correlation_id=request):
            await asyncio.sleep(0)
            inner = await asyncio.gather(*(child() for _ in range(3)))
            assert set(inner) == {request}
            return request, current_correlation_id(), current_context().get("operation")

    async def child() -> str | None:
        await asyncio.sleep(0)
        return current_correlation_id()

    async def main() -> list[tuple[str, str | None, str | None]]:
        return await asyncio.gather(*(handle(f"req-{i}") for i in range(10)))

    results = asyncio.run(main())
    assert results == [(f"req-{i}", f"req-{i}", "handle") for i in range(10)]


def test_plain_executor_threads_do_not_see_the_context() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool, correlation(correlation_id="lost"):
        assert pool.submit(current_correlation_id).result() is None


def test_submit_in_context_carries_ids_into_pool_threads() -> None:
    main_thread = threading.get_ident()

    def work(n: int) -> tuple[int, str | None, bool]:
        return n, current_correlation_id(), threading.get_ident() != main_thread

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for i in range(8):
            with correlation(correlation_id=f"job-{i}"):
                futures.append(submit_in_context(pool, work, i))
        results = [f.result() for f in futures]
    assert results == [(i, f"job-{i}", True) for i in range(8)]


def test_bind_captures_the_context_at_bind_time() -> None:
    with correlation(correlation_id="bound", step=1):
        fn = bind(lambda: dict(current_context()))
    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = pool.submit(fn).result()
    assert seen == {"correlation_id": "bound", "step": 1}


def test_context_crosses_to_thread_via_asyncio_to_thread() -> None:
    async def main() -> str | None:
        async with correlation(correlation_id="to-thread"):
            return await asyncio.to_thread(current_correlation_id)

    assert asyncio.run(main()) == "to-thread"


def test_operation_must_be_a_string() -> None:
    with pytest.raises(TypeError) as info:
        correlation(42)  # type: ignore[arg-type]
    assert str(info.value) == "operation=42 is not a string. Pass a name or None."


@settings(max_examples=30)
@given(st.lists(st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                st.integers(), max_size=3), min_size=1, max_size=5))
def test_nested_scopes_merge_fields_innermost_wins(layers: list[dict[str, int]]) -> None:
    expected: dict[str, int] = {}
    scopes = [correlation(correlation_id="h", **fields) for fields in layers]
    for scope, fields in zip(scopes, layers, strict=True):
        scope.__enter__()
        expected.update(fields)
    try:
        view = {k: v for k, v in current_context().items() if k != "correlation_id"}
        assert view == expected
    finally:
        for scope in reversed(scopes):
            scope.__exit__(None, None, None)
    assert dict(current_context()) == {}
