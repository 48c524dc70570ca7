"""Encrypted backup archives: AES-256-GCM in authenticated 1 MiB chunks (``crypto`` extra).

Layout: a 40-byte header (magic, scrypt salt, nonce prefix), then chunks of
``<4-byte length><ciphertext + 16-byte tag>``. Chunk ``i`` uses nonce ``prefix || i``
and authenticates the header, ``i`` and whether it is the last chunk, so a wrong key,
a flipped byte, reordered chunks or a cut-off file all fail loudly as ``BackupError``;
no byte of an unauthenticated chunk is ever returned. The key is derived from the
secret with scrypt and a salt per backup.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from typing import IO, Any

from pytest_resilience._errors import BackupError

__all__ = ["ALGORITHM", "DecryptingReader", "EncryptingWriter", "aead_available"]

ALGORITHM = "aes-256-gcm/scrypt/1MiB-chunks/v1"
_MAGIC = b"PRSENC1\n"
_CHUNK = 1 << 20
_TAG = 16
_HEADER = len(_MAGIC) + 16 + 8
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def aead_available() -> bool:
    """Whether ``cryptography`` is installed."""
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
    except ImportError:
        return False
    return True


def _aead(secret: bytes, salt: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = hashlib.scrypt(secret, salt=salt, dklen=32, **_SCRYPT)
    return AESGCM(key)


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">QB", index, final)


class EncryptingWriter(io.RawIOBase):
    """A write-only stream that encrypts into ``raw``; ``close()`` writes the last chunk."""

    def __init__(self, raw: IO[bytes], secret: bytes) -> None:
        super().__init__()
        salt, self._prefix = os.urandom(16), os.urandom(8)
        self._header = _MAGIC + salt + self._prefix
        self._aead = _aead(secret, salt)
        self._raw = raw
        self._raw.write(self._header)
        self._buffer = bytearray()
        self._index = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        while len(self._buffer) > _CHUNK:  # keep at least one byte for the final chunk
            self._emit(bytes(self._buffer[:_CHUNK]), final=False)
            del self._buffer[:_CHUNK]
        return len(data)

    def _emit(self, chunk: bytes, *, final: bool) -> None:
        nonce = self._prefix + struct.pack(">I", self._index)
        sealed = self._aead.encrypt(nonce, chunk, _aad(self._header, self._index, final))
        self._raw.write(struct.pack(">I", len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
        super().close()


class DecryptingReader(io.RawIOBase):
    """A read-only stream of the plaintext in ``raw``; every chunk is authenticated
    before any of its bytes is returned."""

    def __init__(self, raw: IO[bytes], secret: bytes, where: str) -> None:
        super().__init__()
        self._where = where
        self._raw = raw
        self._header = raw.read(_HEADER)
        if len(self._header) != _HEADER or not self._header.startswith(_MAGIC):
            raise BackupError(f"Backup {where} is not an encrypted backup of this format (its "
                              "header is wrong or cut off).", path=where)
        salt, self._prefix = self._header[8:24], self._header[24:32]
        self._aead = _aead(secret, salt)
        self._plain = b""
        self._index = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _fail(self, why: str) -> BackupError:
        return BackupError(f"Backup {self._where} cannot be decrypted: {why}. The key is "
                           "wrong or the file was changed; nothing of it was used.",
                           path=self._where)

    def _next(self) -> None:
        size_bytes = self._raw.read(4)
        if len(size_bytes) != 4:
            raise self._fail(f"it ends before its last chunk (after chunk {self._index})")
        (size,) = struct.unpack(">I", size_bytes)
        if size < _TAG or size > _CHUNK + _TAG:
            raise self._fail(f"chunk {self._index} has an impossible length")
        sealed = self._raw.read(size)
        if len(sealed) != size:
            raise self._fail(f"chunk {self._index} is cut off")
        from cryptography.exceptions import InvalidTag

        nonce = self._prefix + struct.pack(">I", self._index)
        for final in (False, True):
            try:
                self._plain = self._aead.decrypt(nonce, sealed,
                                                 _aad(self._header, self._index, final))
            except InvalidTag:
                continue
            self._done = final
            self._index += 1
            if final and self._raw.read(1):
                raise self._fail("there are bytes after its last chunk")
            return
        raise self._fail(f"chunk {self._index} does not authenticate")

    def readinto(self, buffer: Any) -> int:
        while not self._plain and not self._done:
            self._next()
        n = min(len(buffer), len(self._plain))
        buffer[:n] = self._plain[:n]
        self._plain = self._plain[n:]
        return n
