"""Redaction of secrets by key name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience.observability._redact import REDACTED, Redactor


@pytest.mark.parametrize("key", [
    "password", "api_key", "apiKey", "X-Auth-Token", "access_token", "client_secret",
    "DB_PASSWORD", "session_id", "Authorization", "private-key", "cookie",
])
def test_secret_keys_are_redacted(key: str) -> None:
    assert Redactor()({key: "hunter2"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["tokens", "author", "attempt", "waited", "key", "secretary"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert Redactor()({key: 5}) == {key: 5}


def test_nested_mappings_and_lists_are_walked() -> None:
    data = {"request": {"headers": [{"authorization": "Bearer x"}, {"accept": "json"}]},
            "tokens": 3}
    assert Redactor()(data) == {
        "request": {"headers": [{"authorization": REDACTED}, {"accept": "json"}]},
        "tokens": 3,
    }


def test_extra_pattern_and_replacement() -> None:
    redactor = Redactor(keys=("pin",), pattern=r"^x_", replacement="***")
    assert redactor({"pin": 1, "x_user": "a", "password": "p"}) == {
        "pin": "***", "x_user": "***", "password": "p",
    }


def test_bad_pattern_is_rejected() -> None:
    with pytest.raises(ValueError) as info:
        Redactor(pattern="(")
    assert str(info.value).startswith("pattern='(' is not a regular expression (")


def test_keys_must_be_a_sequence_of_words() -> None:
    with pytest.raises(TypeError) as info:
        Redactor(keys="password")
    assert str(info.value) == (
        "keys='password' is not a sequence of key words. Pass e.g. ('password', 'token')."
    )


@settings(max_examples=60)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=8), max_size=6),
       st.sampled_from(["password", "api_key", "secret", "token"]),
       st.from_regex(r"[a-z]{0,5}", fullmatch=True))
def test_redaction_hides_secrets_and_keeps_the_rest(
    data: dict[str, str], word: str, prefix: str
) -> None:
    redactor = Redactor()
    key = f"{prefix}_{word}" if prefix else word
    out = redactor({**data, key: "s3cr3t-value"})
    assert out[key] == REDACTED
    assert "s3cr3t-value" not in repr(out)
    for k, v in data.items():
        if k != key:
            assert out[k] == (REDACTED if redactor.is_secret(k) else v)
