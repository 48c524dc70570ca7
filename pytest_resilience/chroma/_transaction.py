"""All-or-nothing writes to a Chroma collection: ``transaction(collection)``.

Chroma applies each call on its own, so a transaction remembers, before each write, the
state of every id that write touches (only those: the cost grows with the transaction,
not the collection) and puts it back on rollback: ids that did not exist are deleted,
the others are deleted and re-added exactly as they were. The saved state goes to a
journal file first (framed, checksummed lines: ``_journal.py``), so a rollback that
fails, or a process that dies, can be finished later with ``recover()``.

Ordering is what makes that safe: an entry is durable before the write it describes;
``commit`` appends a commit record and removes the journal *before* it releases the
store's lock; ``recover`` lists and reads journals only while holding that lock, so it
never sees the journal of a live transaction, and never applies a committed one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import TransactionError
from pytest_resilience._events import emit
from pytest_resilience.chroma._journal import (
    JOURNAL_DIR,
    JOURNAL_VERSION,
    Journal,
    append,
    fsync_dir,
    read_journal,
    store_id,
)
from pytest_resilience.chroma._lock import StoreLock
from pytest_resilience.kinds import CHROMA_COMMIT, CHROMA_ROLLBACK

__all__ = ["ChromaTransaction", "RecoveryReport", "recover", "transaction"]

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


def _same_dir(a: Path | str, b: Path | str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


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
        chunk_size = _chunk_size(chunk_size)
        self.collection = collection
        self.chunk_size = chunk_size
        self.durable = bool(durable)
        self.clock = _validate.clock(clock)
        store = _store_path(collection)
        if journal is None and store is not None:
            journal = (Path(store) / JOURNAL_DIR /
                       f"tx-{collection.id}-{os.getpid()}-{next(_serial)}.jsonl")
        self.journal: Path | None = Path(journal) if journal is not None else None
        self._store = None if store is None else Path(store)
        self._key = (store or f"memory:{id(collection._client)}", str(collection.id))
        self._store_id: str | None = None
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
                try:
                    assert self._store is not None
                    self._store_id = store_id(self._store, create=True)
                except BaseException:
                    self._lock.release()
                    raise
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
        """Append ``entry`` (after the header, for a new journal), durable when asked."""
        if self.journal is None:
            return
        entries = [entry]
        if not self.journal.exists():
            entries.insert(0, {
                "journal": JOURNAL_VERSION, "collection": self.name,
                "collection_id": str(self.collection.id),
                "store": os.path.realpath(self._key[0]) if self._store is not None else None,
                "store_id": self._store_id, "pid": os.getpid(),
            })
        append(self.journal, entries, durable=self.durable)

    def _close(self, state: str) -> None:
        self.state = state
        if self._lock is not None:
            self._lock.release()
        with _open_lock:
            _open.discard(self._key)

    def commit(self) -> None:
        """Keep every write; the journal is marked committed and removed, then the lock
        is released (so ``recover`` can never roll back a committed transaction)."""
        if self.state != "open":
            raise TransactionError(f"Cannot commit: this transaction is {self.state}.")
        if self.journal is not None and self.journal.exists():
            try:
                append(self.journal, [{"commit": True}], durable=self.durable)
                self.journal.unlink()
            except BaseException:
                self._close("failed")
                raise
        self._close("committed")
        emit(CHROMA_COMMIT, self.name, self.clock, ops=self._ops, ids=len(self._saved))

    def rollback(self) -> None:
        """Restore every touched id; ``TransactionError`` names those that could not be."""
        if self.state != "open":
            raise TransactionError(f"Cannot roll back: this transaction is {self.state}.")
        failed = _restore(self.collection, self._saved, self.chunk_size)
        if not failed and self.journal is not None and self.journal.exists():
            # Before the lock goes (see the module doc), and durably: a journal that came
            # back after a crash would make recover() undo later writes.
            self.journal.unlink()
            if self.durable:
                fsync_dir(self.journal.parent)
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
    """What ``recover`` did: journals finished, ids restored, what it skipped and why.

    ``committed`` lists journals of transactions that had committed (removed, never
    applied); ``skipped`` describes torn journal tails that were left out (their writes
    never happened).
    """

    journals: tuple[str, ...]
    restored: int
    committed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


def _chunk_size(chunk_size: object) -> int:
    return _validate.count(chunk_size, "chunk_size", high=5000, what="a positive integer",
                           accepted="at most 5000 (chroma's batch limit is 5461)")


def _store_and_journals(target: Path, store: Path | str | None) -> tuple[Path, Path | None]:
    """The store ``recover`` acts on, and the one journal file it was given (if any)."""
    if target.is_dir():
        if store is not None and not _same_dir(store, target):
            raise TransactionError(f"recover({target}) was also given store={store}. Pass "
                                   "one store: recover acts on the directory it is given.")
        return target, None
    if not target.is_file():
        raise TransactionError(f"{target} is neither a store directory nor a journal file. "
                               "Pass the directory given to PersistentClient(path=...).")
    if store is not None:
        return Path(store), target
    parent = target.parent
    if parent.name == "journal" and parent.parent.name == ".resilience":
        return parent.parent.parent, target
    raise TransactionError(f"The journal {target} is not inside a store, so recover cannot "
                           "tell which store it may write to. Pass store=<the store "
                           "directory> as well.")


def _check_owner(journal: Journal, store: Path, identity: str | None, adopt: bool) -> None:
    """Refuse a journal that belongs to another store (or to a store before a restore)."""
    header = journal.header or {}
    named = header.get("store")
    if header.get("journal") != JOURNAL_VERSION:
        raise TransactionError(
            f"The journal {journal.path} is not a version-{JOURNAL_VERSION} journal, so its "
            "lines cannot be verified; it was not applied. Inspect it, and delete it once "
            "the store is known to be right.", journal=str(journal.path))
    if header.get("store_id") is None or header.get("store_id") != identity:
        raise TransactionError(
            f"The journal {journal.path} names the store {named}, not {store} (whose "
            "identity it does not carry: another store's journal, or one from before a "
            "restore). It was not applied: recover acts only on the store it is given. "
            f"Run recover({named}) if that store exists, or delete the journal.",
            journal=str(journal.path))
    if not adopt and (named is None or not _same_dir(named, store)):
        raise TransactionError(
            f"The journal {journal.path} was written by a transaction on {named}, but "
            f"recover was given {store} (a copy or a move of it). It was not applied. Pass "
            f"adopt=True to roll back {store}'s copy of that transaction, or run "
            f"recover({named}) for the original.", journal=str(journal.path))


def _collection_for(journal: Journal, store: Path, client: Any) -> Any:
    header = journal.header or {}
    owner = client
    if owner is None:
        import chromadb
        from chromadb.config import Settings

        owner = chromadb.PersistentClient(path=str(store),
                                          settings=Settings(anonymized_telemetry=False))
    collection = owner.get_collection(header.get("collection"), embedding_function=None)
    if header.get("collection_id") not in (None, str(collection.id)):
        raise TransactionError(
            f"The journal {journal.path} is for collection {header.get('collection')!r} with "
            f"id {header.get('collection_id')}, but that name now has id {collection.id} in "
            f"{store} (deleted and made again). It was not applied.",
            journal=str(journal.path))
    return collection


def recover(path: Path | str, *, client: Any = None, store: Path | str | None = None,
            adopt: bool = False, chunk_size: int = 5000, lock_timeout: float = 30.0,
            clock: Clock | None = None) -> RecoveryReport:
    """Finish interrupted transactions of the store at ``path`` (or of one journal file).

    Everything happens under the store's ``StoreLock``: the journals are listed and read
    only then, so a live transaction's journal is never seen and a committed one never
    applied. Only ``path`` is written: a journal naming another store (or one from
    before a restore) is refused with ``TransactionError``; a journal of this store
    written at another path (the store was copied or moved) needs ``adopt=True``. A torn
    last line is skipped (its write never happened; ``report.skipped`` says so); a
    damaged line followed by valid ones keeps the journal and raises. Replays are
    idempotent; a journal is removed once all its ids are restored. ``client`` is a
    chromadb client on ``path``; ``store`` names the store of a journal file kept
    outside it.
    """
    chunk_size = _chunk_size(chunk_size)
    clock = _validate.clock(clock)
    root, single = _store_and_journals(Path(path), store)
    if client is not None:
        settings = client.get_settings()
        if not settings.is_persistent or not _same_dir(settings.persist_directory, root):
            raise TransactionError(f"client= is a chromadb client on "
                                   f"{settings.persist_directory}, not on {root}. Pass a "
                                   "client on the store being recovered, or none.")
    done: list[str] = []
    committed: list[str] = []
    skipped: list[str] = []
    restored = 0
    with StoreLock(root, timeout=lock_timeout, purpose="recover", clock=clock):
        journals = [single] if single is not None else \
            sorted((root / JOURNAL_DIR).glob("*.jsonl"))
        identity = store_id(root, create=False)
        for path_ in journals:
            if not path_.exists():
                continue
            journal = read_journal(path_)
            if journal.header is None and not journal.legacy and journal.damaged is None:
                path_.unlink()  # even the header was torn: no write had happened
                skipped.append(f"{path_}: {journal.torn or 'empty'}")
                continue
            _check_owner(journal, root, identity, adopt)
            if journal.committed:
                path_.unlink()
                committed.append(str(path_))
                continue
            collection = _collection_for(journal, root, client)
            failed = _restore(collection, journal.saved, chunk_size)
            header = journal.header or {}
            emit(CHROMA_ROLLBACK, str(header.get("collection")), clock, ops=0,
                 ids=len(journal.saved), outcome="recovered" if not failed else "partial",
                 unrestored=len(failed), skipped=int(journal.torn is not None))
            if failed:
                raise TransactionError(f"Recovery from {path_} could not restore "
                                       f"{len(failed)} ids; the journal is kept.",
                                       unrestored=failed, journal=str(path_))
            if journal.damaged is not None:
                raise TransactionError(
                    f"Recovery from {path_} restored {len(journal.saved)} ids, but "
                    f"{journal.damaged}; the ids of the damaged entry may be left as the "
                    "transaction wrote them. The journal is kept for inspection.",
                    journal=str(path_))
            if journal.torn is not None:
                skipped.append(f"{path_}: {journal.torn}")
            path_.unlink()
            fsync_dir(path_.parent)  # a journal that came back would undo later writes
            done.append(str(path_))
            restored += len(journal.saved)
    return RecoveryReport(tuple(done), restored, tuple(committed), tuple(skipped))
