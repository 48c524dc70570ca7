"""Refuse bad records before they reach Chroma, listing every problem of a batch at once.

Chroma itself rejects some of these one at a time with terse messages (NaN, a wrong
dimension), accepts others silently (a NaN query, an empty collection takes any
dimension once) or fails with a bare ``IndexError`` (an empty vector).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._errors import ValidationError

__all__ = [
    "RecordRules",
    "ValidatingCollection",
    "record_problems",
    "validate_batch",
    "validate_record",
]

_FLOAT32_MAX = 3.4028234663852886e38
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, kw_only=True)
class RecordRules:
    """What a valid record looks like. Every field is keyword-only.

    ``tags_key`` holds tags (a comma-separated string or a list of strings, each
    matching ``tag_pattern``); ``significance_key`` holds a score in [0, 1].
    """

    max_document_chars: int = 100_000
    id_pattern: str = r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,255}"
    tag_pattern: str = r"[a-z0-9][a-z0-9_.-]{0,63}"
    tags_key: str = "tags"
    significance_key: str = "significance"
    max_batch: int = 5000
    reject_zero_vectors: bool = False

    def __post_init__(self) -> None:
        for name in ("max_document_chars", "max_batch"):
            value = getattr(self, name)
            _validate.count(value, name, what="a positive integer", accepted="an int >= 1")
        for name in ("id_pattern", "tag_pattern", "tags_key", "significance_key"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name}={_validate.show(getattr(self, name))} is not a "
                                "string. Pass a str.")
        for name in ("id_pattern", "tag_pattern"):
            try:
                re.compile(getattr(self, name))
            except (re.error, OverflowError, RecursionError) as exc:
                raise ValueError(f"{name}={getattr(self, name)!r} is not a valid regular "
                                 f"expression ({exc}). Pass a pattern for re.fullmatch.") from None


DEFAULT_RULES = RecordRules()


def _embedding_problems(embedding: Any, dimension: int | None,
                        rules: RecordRules) -> list[str]:
    if hasattr(embedding, "tolist"):
        embedding = embedding.tolist()
    if not isinstance(embedding, Sequence) or isinstance(embedding, str | bytes):
        return [f"embedding is a {type(embedding).__name__}, not a sequence of numbers"]
    if not embedding:
        return ["embedding is empty"]
    problems: list[str] = []
    if dimension is not None and len(embedding) != dimension:
        problems.append(f"embedding has {len(embedding)} values, the collection expects "
                        f"{dimension}")
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in embedding):
        problems.append("embedding holds values that are not numbers")
        return problems
    bad = [i for i, x in enumerate(embedding) if not math.isfinite(x)]
    if bad:
        problems.append(f"embedding holds NaN or Inf at index {bad[0]}"
                        + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
    elif any(abs(x) > _FLOAT32_MAX for x in embedding):
        problems.append("embedding holds a value beyond float32 range")
    elif rules.reject_zero_vectors and not any(embedding):
        problems.append("embedding is all zeros (undefined under cosine distance)")
    return problems


def _metadata_problems(metadata: Any, rules: RecordRules) -> list[str]:
    if metadata is None:
        return []
    if not isinstance(metadata, Mapping):
        return [f"metadata is a {type(metadata).__name__}, not a mapping"]
    problems: list[str] = []
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            problems.append(f"metadata key {key!r} is not a non-empty string")
        elif key == rules.tags_key:
            problems.extend(_tag_problems(value, rules))
        elif key == rules.significance_key:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0.0 <= value <= 1.0:
                problems.append(f"metadata {key!r}={value!r} is not a score in [0, 1]")
        elif value is not None and not isinstance(value, _SCALARS):
            problems.append(f"metadata {key!r} is a {type(value).__name__}; Chroma takes "
                            "str, int, float, bool or None")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"metadata {key!r}={value!r} is not finite")
    return problems


def _tag_problems(value: Any, rules: RecordRules) -> list[str]:
    if isinstance(value, str):
        tags = [t.strip() for t in value.split(",")] if value else []
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        tags = list(value)
    else:
        return [f"metadata {rules.tags_key!r} is not a comma-separated string or a list "
                "of strings"]
    return [f"tag {t!r} does not match {rules.tag_pattern!r}" for t in tags
            if not re.fullmatch(rules.tag_pattern, t)]


def record_problems(
    id: Any,
    embedding: Any,
    *,
    document: Any = None,
    metadata: Any = None,
    dimension: int | None = None,
    rules: RecordRules = DEFAULT_RULES,
) -> list[str]:
    """Every problem of one record (an empty list when it is valid)."""
    problems: list[str] = []
    if not isinstance(id, str) or not re.fullmatch(rules.id_pattern, id):
        problems.append(f"id {id!r} does not match {rules.id_pattern!r}")
    if embedding is not None:
        problems.extend(_embedding_problems(embedding, dimension, rules))
    if document is not None:
        if not isinstance(document, str):
            problems.append(f"document is a {type(document).__name__}, not a string")
        elif len(document) > rules.max_document_chars:
            problems.append(f"document has {len(document)} characters, the limit is "
                            f"{rules.max_document_chars}")
    problems.extend(_metadata_problems(metadata, rules))
    return problems


def validate_record(
    id: Any,
    embedding: Any,
    *,
    document: Any = None,
    metadata: Any = None,
    dimension: int | None = None,
    rules: RecordRules = DEFAULT_RULES,
) -> None:
    """Raise ``ValidationError`` listing every problem of one record."""
    problems = record_problems(id, embedding, document=document, metadata=metadata,
                               dimension=dimension, rules=rules)
    if problems:
        raise ValidationError([f"record {id!r}: {p}" for p in problems])


def validate_batch(
    ids: Sequence[Any],
    embeddings: Sequence[Any] | None = None,
    *,
    documents: Sequence[Any] | None = None,
    metadatas: Sequence[Any] | None = None,
    dimension: int | None = None,
    rules: RecordRules = DEFAULT_RULES,
) -> None:
    """Raise ``ValidationError`` listing every problem of every record of a batch.

    Without ``dimension`` all embeddings must agree with the first one.
    """
    problems: list[str] = []
    n = len(ids)
    if n > rules.max_batch:
        problems.append(f"batch has {n} records, the limit is {rules.max_batch}")
    for field, values in (("embeddings", embeddings), ("documents", documents),
                          ("metadatas", metadatas)):
        if values is not None and len(values) != n:
            problems.append(f"{field} has {len(values)} entries for {n} ids")
    seen: set[Any] = set()
    for rid in ids:
        if rid in seen:
            problems.append(f"id {rid!r} appears more than once in the batch")
        seen.add(rid if isinstance(rid, str) else repr(rid))
    if embeddings is not None and dimension is None and len(embeddings):
        first = embeddings[0]
        dimension = len(first) if hasattr(first, "__len__") else None
    for i, rid in enumerate(ids):
        found = record_problems(
            rid,
            embeddings[i] if embeddings is not None and i < len(embeddings) else None,
            document=documents[i] if documents is not None and i < len(documents) else None,
            metadata=metadatas[i] if metadatas is not None and i < len(metadatas) else None,
            dimension=dimension,
            rules=rules,
        )
        problems.extend(f"record {i} ({rid!r}): {p}" for p in found)
    if problems:
        raise ValidationError(problems)


class ValidatingCollection:
    """A collection whose ``add`` / ``upsert`` / ``update`` validate the batch first.

    The expected dimension is ``dimension``, else the collection's, else the first
    accepted batch's. Every other attribute is the wrapped collection's.
    """

    def __init__(self, collection: Any, *, rules: RecordRules = DEFAULT_RULES,
                 dimension: int | None = None) -> None:
        if dimension is not None and (isinstance(dimension, bool)
                                      or not isinstance(dimension, int) or dimension < 1):
            raise ValueError(f"dimension={dimension!r} is not a positive integer. "
                             "Pass the embedding size, or None to take the collection's.")
        self.collection = collection
        self.rules = rules
        model = getattr(collection, "_model", None)
        self.dimension = dimension or getattr(model, "dimension", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    def _checked(self, op: str, ids: Any, embeddings: Any, metadatas: Any,
                 documents: Any) -> None:
        id_list = [ids] if isinstance(ids, str) else list(ids)
        validate_batch(id_list, embeddings, documents=documents, metadatas=metadatas,
                       dimension=self.dimension, rules=self.rules)
        kwargs = {k: v for k, v in (("embeddings", embeddings), ("metadatas", metadatas),
                                    ("documents", documents)) if v is not None}
        getattr(self.collection, op)(ids=id_list, **kwargs)
        if self.dimension is None and embeddings is not None and len(embeddings):
            self.dimension = len(embeddings[0])

    def add(self, ids: Any, embeddings: Any = None, *, metadatas: Any = None,
            documents: Any = None) -> None:
        """Validate, then ``collection.add``."""
        self._checked("add", ids, embeddings, metadatas, documents)

    def upsert(self, ids: Any, embeddings: Any = None, *, metadatas: Any = None,
               documents: Any = None) -> None:
        """Validate, then ``collection.upsert``."""
        self._checked("upsert", ids, embeddings, metadatas, documents)

    def update(self, ids: Any, embeddings: Any = None, *, metadatas: Any = None,
               documents: Any = None) -> None:
        """Validate, then ``collection.update``."""
        self._checked("update", ids, embeddings, metadatas, documents)
