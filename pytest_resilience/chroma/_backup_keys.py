"""Keys for backups: where they come from, and the HMAC-SHA256 signature of a manifest.

A key is read from a file or from an environment variable the user names, never from
an argument that could end up in a log; only a short key id (a hash) is ever written.
The signature covers the whole manifest (every file's size and SHA-256, the counts),
so a restore that checks it knows every byte it is about to write is the creator's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from pytest_resilience import _validate

__all__ = ["MIN_KEY_BYTES", "key_id", "load_key", "sign", "signature_problem"]

MIN_KEY_BYTES = 16
_DOMAIN = b"pytest-resilience backup manifest v1\n"


def load_key(key_file: Path | str | None, key_env: str | None) -> bytes | None:
    """The signing key from ``key_file`` or the variable ``key_env`` (at most one)."""
    if key_file is not None and key_env is not None:
        raise ValueError("key_file= and key_env= were both given. Pass one source of the "
                         "signing key.")
    if key_file is not None:
        if not isinstance(key_file, str | os.PathLike):
            raise TypeError(f"key_file={_validate.show(key_file)} is not a path. Pass the "
                            "file holding the signing key.")
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"key_file={str(key_file)!r} cannot be read ({exc.strerror}). "
                             "Pass a readable file holding the signing key.") from None
        where = f"key_file={str(key_file)!r}"
    elif key_env is not None:
        _validate.text(key_env, "key_env", what="an environment variable name",
                       accepted="the name of the variable holding the key, e.g. "
                       "'BACKUP_KEY'")
        value = os.environ.get(key_env)
        if value is None:
            raise ValueError(f"key_env={key_env!r} names no environment variable that is "
                             "set. Set it to the signing key, or pass key_file=.")
        key, where = value.strip().encode(), f"key_env={key_env!r}"
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{where} holds a key of {len(key)} bytes. Pass a key of at least "
                         f"{MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`).")
    return key


def key_id(key: bytes) -> str:
    """A short public name of ``key`` (says which key signed, reveals nothing of it)."""
    return hashlib.sha256(b"pytest-resilience key id\n" + key).hexdigest()[:16]


def _mac(manifest: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, _DOMAIN + canonical, hashlib.sha256).hexdigest()


def sign(manifest: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``manifest`` with its ``signature`` (HMAC-SHA256 over everything else)."""
    return {**manifest, "signature": {"alg": "hmac-sha256", "key_id": key_id(key),
                                      "mac": _mac(manifest, key)}}


def signature_problem(manifest: dict[str, Any], key: bytes) -> str | None:
    """Why ``manifest`` does not verify with ``key``, or ``None`` when it does."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        return "the manifest is not signed, and a signing key was given"
    if signature.get("alg") != "hmac-sha256":
        return f"the manifest is signed with {signature.get('alg')!r}, not hmac-sha256"
    if signature.get("key_id") != key_id(key):
        return (f"the manifest was signed with key {signature.get('key_id')}, not with the "
                f"given key {key_id(key)}")
    if not hmac.compare_digest(str(signature.get("mac")), _mac(manifest, key)):
        return "the manifest's signature does not verify: it was changed after signing"
    return None
