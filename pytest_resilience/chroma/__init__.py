"""Chroma reliability: transactions with rollback, validation, backups, integrity checks,
and the cross-process writer lock they share.

Nothing here imports chromadb until it is used.
"""

from __future__ import annotations

from pytest_resilience.chroma._backup import (
    BackupInfo,
    BackupManager,
    BackupVerification,
    RestoreReport,
)
from pytest_resilience.chroma._files import close_store
from pytest_resilience.chroma._integrity import (
    Finding,
    IntegrityReport,
    averify_store,
    seal_store,
    verify_store,
)
from pytest_resilience.chroma._lock import StoreLock
from pytest_resilience.chroma._store import ChromaStore, make_store
from pytest_resilience.chroma._transaction import (
    ChromaTransaction,
    RecoveryReport,
    recover,
    transaction,
)
from pytest_resilience.chroma._validation import (
    RecordRules,
    ValidatingCollection,
    record_problems,
    validate_batch,
    validate_record,
)

__all__ = [
    "BackupInfo",
    "BackupManager",
    "BackupVerification",
    "ChromaStore",
    "ChromaTransaction",
    "Finding",
    "IntegrityReport",
    "RecordRules",
    "RecoveryReport",
    "RestoreReport",
    "StoreLock",
    "ValidatingCollection",
    "averify_store",
    "close_store",
    "make_store",
    "record_problems",
    "recover",
    "seal_store",
    "transaction",
    "validate_batch",
    "validate_record",
    "verify_store",
]
