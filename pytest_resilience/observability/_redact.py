"""Redaction of secrets in event attributes and log fields, by key name."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_resilience import _validate

__all__ = ["DEFAULT_SECRET_KEYS", "REDACTED", "Redactor"]

REDACTED = "[REDACTED]"

#: Key words that mark a secret. A key matches when one of them is a whole word of the
#: key, words being split at ``_``, ``-``, ``.`` and camelCase humps: ``api_key``,
#: ``accessToken`` and ``X-Auth-Token`` match; ``tokens`` and ``author`` do not.
DEFAULT_SECRET_KEYS = (
    "password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "auth",
    "authorization", "credential", "credentials", "cookie", "private_key", "session_id",
    "dsn",
)

_MAX_DEPTH = 8
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class Redactor:
    """Replaces values whose key names a secret; nested mappings and lists are walked.

    ``keys`` are key words (see ``DEFAULT_SECRET_KEYS``); ``pattern`` is an extra regular
    expression searched in the lower-cased key.
    """

    __slots__ = ("_is_secret", "keys", "pattern", "replacement")

    def __init__(
        self,
        *,
        keys: Sequence[str] = DEFAULT_SECRET_KEYS,
        pattern: str | re.Pattern[str] | None = None,
        replacement: str = REDACTED,
    ) -> None:
        if isinstance(keys, str) or not isinstance(keys, Iterable) or \
                not all(isinstance(k, str) and k for k in keys):
            raise TypeError(
                f"keys={_validate.show(keys)} is not a sequence of key words. Pass e.g. "
                "('password', 'token')."
            )
        if not isinstance(replacement, str):
            raise TypeError(f"replacement={_validate.show(replacement)} is not a string. "
                            "Pass the text that stands in for a secret.")
        self.keys = tuple(k.lower().replace("-", "_") for k in keys)
        try:
            self.pattern = re.compile(pattern) if pattern is not None else None
        except (re.error, TypeError, OverflowError, RecursionError) as exc:
            raise ValueError(
                f"pattern={_validate.show(pattern)} is not a regular expression ({exc}). Pass "
                f"e.g. r'^x_'."
            ) from None
        self.replacement = replacement
        words = "|".join(re.escape(k) for k in sorted(self.keys, key=len, reverse=True))
        whole = re.compile(rf"(?:^|_)(?:{words})(?:_|$)")
        extra = self.pattern

        @functools.lru_cache(maxsize=1024)
        def is_secret(key: str) -> bool:
            normal = re.sub(r"[-.\s]+", "_", _HUMP.sub("_", key)).lower()
            return bool(whole.search(normal)) or bool(extra and extra.search(key.lower()))

        self._is_secret = is_secret

    def is_secret(self, key: str) -> bool:
        """Whether a value under ``key`` is redacted."""
        return self._is_secret(key)

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``data`` with secret values replaced."""
        return self._mapping(data, 0)

    def _mapping(self, data: Mapping[str, Any], depth: int) -> dict[str, Any]:
        return {
            key: self.replacement if self._is_secret(str(key)) else self._value(value, depth)
            for key, value in data.items()
        }

    def _value(self, value: Any, depth: int) -> Any:
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, Mapping):
            return self._mapping(value, depth + 1)
        if isinstance(value, list | tuple):
            return [self._value(v, depth + 1) for v in value]
        return value
