"""All-or-nothing writes to a Chroma collection: ``transaction(collection)``.

Chroma applies each call on its own, so a transaction remembers, before each write, the
state of every id that write touches (only those: the cost grows with the transaction,
not the collection) and puts it back on rollback: ids that did not exist are deleted,
the others are deleted and re-added exactly as they were. The saved state goes to a
journal file first, so a rollback that fails, or a process that dies, can be finished
later with ``recover()``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._errors import TransactionError
from pytest_resilience._events import emit
from pytest_resilience.chroma._files import SIDE_DIR, fsync_path
from pytest_resilience.chroma._lock import StoreLock
from pytest_resilience.kinds import CHROMA_COMMIT, CHROMA_ROLLBACK

__all__ = ["ChromaTransaction", "RecoveryReport", "recover", "transaction"]

JOURNAL_DIR = f"{SIDE_DIR}/journal"
_INCLUDE = ["embeddings", "metadatas", "documents"]
_open_lock = threading.Lock()
_open: set[tuple[str, str]] = set()
_serial = itertools.count()

Saved = dict[str, dict[str, Any] | None]


def _store_path(collection: Any) -> str | None:
    try:
        settings = collection._client.get_settings()
    except AttributeError:
        return None
    return str(settings.persist_directory) if settings.is_persistent else None


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _as_list(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _restore(collection: Any, saved: Saved, chunk_size: int) -> list[str]:
    """Put every id back as saved (idempotent); returns the ids that could not be."""
    failed: list[str] = []
    for chunk in _chunks(sorted(saved), chunk_size):
        try:
            collection.delete(ids=chunk)
            present = [i for i in chunk if saved[i] is not None]
            if present:
                rows = [saved[i] or {} for i in present]
                collection.add(
                    ids=present,
                    embeddings=[r["embedding"] for r in rows],
                    metadatas=[r["metadata"] for r in rows],
                    documents=[r["document"] for r in rows],
                )
        except BaseException:
            failed.extend(chunk)
    return failed


class ChromaTransaction:
    """Writes on one collection that are undone together on any exception.

    Use ``with transaction(collection) as tx:`` (or ``async with``) and write through
    ``tx.add / upsert / update / delete``; writes are applied at once, so reads inside
    the block see them. ``commit()`` keeps them, ``rollback()`` restores every touched id
    to its state before the transaction. Nesting on one collection is refused. On a
    persistent store the transaction holds the store's ``StoreLock`` while open (waiting
    at most ``lock_timeout`` seconds for it), so backups and other processes' writers
    wait for it.
    """

    def __init__(
        self,
        collection: Any,
        *,
        journal: Path | str | None = None,
        chunk_size: int = 5000,
        durable: bool = True,
        lock_timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size!r} is not a positive integer. "
                             "Pass at most 5000 (chroma's batch limit is 5461).")
        self.collection = collection
        self.chunk_size = chunk_size
        self.durable = durable
        self.clock = clock or SystemClock()
        store = _store_path(collection)
        if journal is None and store is not None:
            journal = (Path(store) / JOURNAL_DIR /
                       f"tx-{collection.id}-{os.getpid()}-{next(_serial)}.jsonl")
        self.journal: Path | None = Path(journal) if journal is not None else None
        self._key = (store or f"memory:{id(collection._client)}", str(collection.id))
        self._lock = StoreLock(store, timeout=lock_timeout, clock=self.clock, reentrant=True,
                               purpose=f"a transaction on {self.name!r}") \
            if store is not None else None
        self._saved: Saved = {}
        self._ops = 0
        self.state = "new"

    @property
    def name(self) -> str:
        """The collection's name (the event source)."""
        return str(self.collection.name)

    @property
    def touched(self) -> frozenset[str]:
        """Every id written so far in this transaction."""
        return frozenset(self._saved)

    def begin(self) -> ChromaTransaction:
        """Open the transaction (``with`` does this)."""
        if self.state != "new":
            raise TransactionError(f"This transaction is {self.state}; start a new one.")
        with _open_lock:
            if self._key in _open:
                raise TransactionError(
                    f"A transaction is already open on collection {self.name!r}. Nested "
                    "transactions are not supported: commit or roll back the outer one first."
                )
            _open.add(self._key)
        try:
            if self._lock is not None:
                self._lock.acquire()
        except BaseException:
            with _open_lock:
                _open.discard(self._key)
            raise
        self.state = "open"
        return self

    def add(self, ids: Sequence[str] | str, embeddings: Any = None, *, metadatas: Any = None,
            documents: Any = None) -> None:
        """``collection.add`` inside the transaction."""
        self._write("add", ids, embeddings=embeddings, metadatas=metadatas,
                    documents=documents)

    def upsert(self, ids: Sequence[str] | str, embeddings: Any = None, *,
               metadatas: Any = None, documents: Any = None) -> None:
        """``collection.upsert`` inside the transaction."""
        self._write("upsert", ids, embeddings=embeddings, metadatas=metadatas,
                    documents=documents)

    def update(self, ids: Sequence[str] | str, embeddings: Any = None, *,
               metadatas: Any = None, documents: Any = None) -> None:
        """``collection.update`` inside the transaction."""
        self._write("update", ids, embeddings=embeddings, metadatas=metadatas,
                    documents=documents)

    def delete(self, ids: Sequence[str] | str) -> None:
        """``collection.delete(ids=...)`` inside the transaction."""
        self._write("delete", ids)

    def _write(self, op: str, ids: Sequence[str] | str, **fields: Any) -> None:
        if self.state == "new":
            self.begin()
        if self.state != "open":
            raise TransactionError(f"This transaction is {self.state}; start a new one.")
        id_list = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        self._checkpoint(id_list)
        self._ops += 1
        kwargs = {k: v for k, v in fields.items() if v is not None}
        getattr(self.collection, op)(ids=id_list, **kwargs)

    def _checkpoint(self, ids: list[str]) -> None:
        fresh = [i for i in dict.fromkeys(ids) if i not in self._saved]
        if not fresh:
            return
        saved: Saved = dict.fromkeys(fresh)
        for chunk in _chunks(fresh, self.chunk_size):
            got = self.collection.get(ids=chunk, include=_INCLUDE)
            for i, rid in enumerate(got["ids"]):
                saved[rid] = {
                    "embedding": _as_list(got["embeddings"][i]),
                    "metadata": got["metadatas"][i],
                    "document": got["documents"][i],
                }
        self._journal({"saved": saved})
        self._saved.update(saved)

    def _journal(self, entry: dict[str, Any]) -> None:
        if self.journal is None:
            return
        new = not self.journal.exists()
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a", encoding="utf-8") as fh:
            if new:
                fh.write(json.dumps({"journal": 1, "collection": self.name,
                                     "store": self._key[0]}) + "\n")
            fh.write(json.dumps(entry, default=_as_list) + "\n")
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
        if new and self.durable:
            fsync_path(self.journal.parent)

    def _close(self, state: str) -> None:
        self.state = state
        if self._lock is not None:
            self._lock.release()
        with _open_lock:
            _open.discard(self._key)

    def commit(self) -> None:
        """Keep every write; the journal is removed."""
        if self.state != "open":
            raise TransactionError(f"Cannot commit: this transaction is {self.state}.")
        self._close("committed")
        self._drop_journal()
        emit(CHROMA_COMMIT, self.name, self.clock, ops=self._ops, ids=len(self._saved))

    def rollback(self) -> None:
        """Restore every touched id; ``TransactionError`` names those that could not be."""
        if self.state != "open":
            raise TransactionError(f"Cannot roll back: this transaction is {self.state}.")
        failed = _restore(self.collection, self._saved, self.chunk_size)
        self._close("rolled back" if not failed else "failed")
        emit(CHROMA_ROLLBACK, self.name, self.clock, ops=self._ops, ids=len(self._saved),
             outcome="ok" if not failed else "partial", unrestored=len(failed))
        if failed:
            where = f" The journal {self.journal} holds their saved state: run recover()." \
                if self.journal is not None else " No journal was kept."
            raise TransactionError(
                f"Rollback on collection {self.name!r} could not restore {len(failed)} of "
                f"{len(self._saved)} ids.{where}",
                unrestored=failed,
                journal=str(self.journal) if self.journal is not None else None,
            )
        self._drop_journal()

    def _drop_journal(self) -> None:
        """Remove the journal durably: a removal lost in a crash would bring it back, and
        recover() would then undo what the transaction did."""
        if self.journal is None:
            return
        try:
            self.journal.unlink()
        except FileNotFoundError:
            return
        if self.durable:
            fsync_path(self.journal.parent)

    def __enter__(self) -> ChromaTransaction:
        return self.begin()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.state != "open":
            return
        if exc is None:
            self.commit()
        else:
            self.rollback()

    async def __aenter__(self) -> ChromaTransaction:
        return await asyncio.to_thread(self.begin)  # a busy lock must not block the loop

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.state != "open":
            return
        if exc is None:
            self.commit()
        else:
            await asyncio.to_thread(self.rollback)

    async def aadd(self, ids: Sequence[str] | str, embeddings: Any = None, *,
                   metadatas: Any = None, documents: Any = None) -> None:
        """``add`` in a worker thread."""
        await asyncio.to_thread(self.add, ids, embeddings, metadatas=metadatas,
                                documents=documents)

    async def aupsert(self, ids: Sequence[str] | str, embeddings: Any = None, *,
                      metadatas: Any = None, documents: Any = None) -> None:
        """``upsert`` in a worker thread."""
        await asyncio.to_thread(self.upsert, ids, embeddings, metadatas=metadatas,
                                documents=documents)

    async def aupdate(self, ids: Sequence[str] | str, embeddings: Any = None, *,
                      metadatas: Any = None, documents: Any = None) -> None:
        """``update`` in a worker thread."""
        await asyncio.to_thread(self.update, ids, embeddings, metadatas=metadatas,
                                documents=documents)

    async def adelete(self, ids: Sequence[str] | str) -> None:
        """``delete`` in a worker thread."""
        await asyncio.to_thread(self.delete, ids)

    async def arollback(self) -> None:
        """``rollback`` in a worker thread."""
        await asyncio.to_thread(self.rollback)


def transaction(collection: Any, *, journal: Path | str | None = None,
                chunk_size: int = 5000, lock_timeout: float = 30.0,
                clock: Clock | None = None) -> ChromaTransaction:
    """A ``ChromaTransaction`` on ``collection``, for ``with`` / ``async with``."""
    return ChromaTransaction(collection, journal=journal, chunk_size=chunk_size,
                             lock_timeout=lock_timeout, clock=clock)


@dataclass(frozen=True)
class RecoveryReport:
    """What ``recover`` replayed: journals finished and ids restored."""

    journals: tuple[str, ...]
    restored: int


def recover(path: Path | str, *, client: Any = None, chunk_size: int = 5000,
            lock_timeout: float = 30.0, clock: Clock | None = None) -> RecoveryReport:
    """Finish interrupted rollbacks: replay one journal, or every journal of a store.

    ``path`` is a journal file or a store directory. Replays are idempotent; a journal
    is removed once all its ids are restored, else ``TransactionError`` names the rest.
    Each replay holds the store's ``StoreLock``.
    """
    target = Path(path)
    journals = sorted((target / JOURNAL_DIR).glob("*.jsonl")) if target.is_dir() else [target]
    done: list[str] = []
    restored = 0
    for journal in journals:
        lines = [json.loads(x) for x in journal.read_text(encoding="utf-8").splitlines() if x]
        if not lines:
            journal.unlink()
            continue
        header, saved = lines[0], {}
        for entry in lines[1:]:
            saved.update(entry["saved"])
        owner = client
        if owner is None:
            import chromadb
            from chromadb.config import Settings

            owner = chromadb.PersistentClient(path=header["store"],
                                              settings=Settings(anonymized_telemetry=False))
        collection = owner.get_collection(header["collection"], embedding_function=None)
        with StoreLock(header["store"], timeout=lock_timeout, purpose="recover",
                       clock=clock):
            failed = _restore(collection, saved, chunk_size)
        emit(CHROMA_ROLLBACK, header["collection"], clock, ops=0, ids=len(saved),
             outcome="recovered" if not failed else "partial", unrestored=len(failed))
        if failed:
            raise TransactionError(f"Recovery from {journal} could not restore "
                                   f"{len(failed)} ids; the journal is kept.",
                                   unrestored=failed, journal=str(journal))
        journal.unlink()
        fsync_path(journal.parent)  # a journal that came back would undo later writes
        done.append(str(journal))
        restored += len(saved)
    return RecoveryReport(tuple(done), restored)
