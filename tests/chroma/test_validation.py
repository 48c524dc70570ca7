"""Validation: every problem of a batch is reported at once, before anything is written."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience._errors import ValidationError
from pytest_resilience.chroma._validation import (
    RecordRules,
    ValidatingCollection,
    record_problems,
    validate_batch,
    validate_record,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")


def test_valid_record_has_no_problems() -> None:
    assert record_problems("doc-1", [0.1, 0.2], document="hi",
                           metadata={"tags": "a,b-c", "significance": 0.5, "src": "x"},
                           dimension=2) == []
    validate_record("doc-1", [0.1, 0.2], dimension=2)


def test_every_problem_of_one_record_is_listed() -> None:
    with pytest.raises(ValidationError) as info:
        validate_record("../bad id", [math.nan, 1.0, 2.0], document="x" * 11,
                        metadata={"tags": "ok,Bad Tag", "significance": 1.5, "obj": {"a": 1}},
                        dimension=2, rules=RecordRules(max_document_chars=10))
    assert list(info.value.problems) == [
        "record '../bad id': id '../bad id' does not match "
        "'[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,255}'",
        "record '../bad id': embedding has 3 values, the collection expects 2",
        "record '../bad id': embedding holds NaN or Inf at index 0",
        "record '../bad id': document has 11 characters, the limit is 10",
        "record '../bad id': tag 'Bad Tag' does not match '[a-z0-9][a-z0-9_.-]{0,63}'",
        "record '../bad id': metadata 'significance'=1.5 is not a score in [0, 1]",
        "record '../bad id': metadata 'obj' is a dict; Chroma takes str, int, float, bool "
        "or None",
    ]
    assert str(info.value).startswith("7 validation problems:\n  - record '../bad id'")


def test_batch_lists_problems_of_every_record() -> None:
    with pytest.raises(ValidationError) as info:
        validate_batch(["a", "b", "a", "c"], [[1.0, 2.0], [1.0], [math.inf, 0.0], []],
                       documents=["x", "y", "z"])
    assert info.value.problems == (
        "documents has 3 entries for 4 ids",
        "id 'a' appears more than once in the batch",
        "record 1 ('b'): embedding has 1 values, the collection expects 2",
        "record 2 ('a'): embedding holds NaN or Inf at index 0",
        "record 3 ('c'): embedding is empty",
    )


@pytest.mark.parametrize(("embedding", "problem"), [
    ([1e39, 0.0], "embedding holds a value beyond float32 range"),
    (["x", 0.0], "embedding holds values that are not numbers"),
    ("ab", "embedding is a str, not a sequence of numbers"),
    ([0.0, 0.0], "embedding is all zeros (undefined under cosine distance)"),
])
def test_embedding_rules(embedding, problem) -> None:
    rules = RecordRules(reject_zero_vectors=True)
    assert record_problems("id", embedding, dimension=2, rules=rules) == [problem]


@settings(max_examples=50)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_significance_accepted_exactly_in_unit_interval(score: float) -> None:
    problems = record_problems("id", None, metadata={"significance": score})
    assert (problems == []) == (0.0 <= score <= 1.0)


def test_bad_rules_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError) as info:
        RecordRules(max_batch=0)
    assert str(info.value) == "max_batch=0 is not a positive integer. Pass an int >= 1."
    with pytest.raises(ValueError, match=r"id_pattern='\(' is not a valid regular expression"):
        RecordRules(id_pattern="(")


def test_validating_collection_writes_nothing_from_a_bad_batch(chroma_store) -> None:
    col = ValidatingCollection(chroma_store.collection())
    assert col.dimension == 8
    before = chroma_store.snapshot()
    with pytest.raises(ValidationError) as info:
        col.add(["ok-1", "bad-1"], [[0.5] * 8, [0.5] * 7],
                metadatas=[{"significance": 0.2}, {"significance": -1}])
    assert info.value.problems == (
        "record 1 ('bad-1'): embedding has 7 values, the collection expects 8",
        "record 1 ('bad-1'): metadata 'significance'=-1 is not a score in [0, 1]",
    )
    assert chroma_store.snapshot() == before
    col.add(["ok-1"], [[0.5] * 8], metadatas=[{"significance": 0.2}])
    assert col.count() == 301  # other attributes pass through


def test_validating_collection_bad_dimension_argument(chroma_store) -> None:
    with pytest.raises(ValueError) as info:
        ValidatingCollection(chroma_store.collection(), dimension=0)
    assert str(info.value) == ("dimension=0 is not a positive integer. Pass the embedding "
                               "size, or None to take the collection's.")
