"""A migrations directory: ``NNNN_name.up.sql`` / ``NNNN_name.down.sql`` files, their
headers (``-- depends: 0003``, ``-- transactional: false``), checksums and order."""

from __future__ import annotations

import difflib
import hashlib
import heapq
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from pytest_resilience import validate
from pytest_resilience.migrations._errors import DependencyError, MigrationError
from pytest_resilience.migrations._sql import split_statements

__all__ = ["HEADER_KEYS", "Migration", "MigrationSet", "load_migrations"]

_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9_\-]+)\.(?P<dir>up|down)\.sql$")
_HEADER = re.compile(r"^--\s*(?P<key>[A-Za-z_\-]+)\s*:\s*(?P<value>.*?)\s*$")
#: The header keys a migration's first comment lines may set.
HEADER_KEYS = ("depends", "transactional")


@dataclass(frozen=True)
class Migration:
    """One versioned migration: its SQL both ways, its headers and the up file's checksum."""

    version: str
    name: str
    up_sql: str
    down_sql: str | None
    depends: tuple[str, ...] = ()
    transactional: bool = True
    up_path: Path | None = None
    down_path: Path | None = None
    #: sha256 (hex) of the up file's bytes; of ``up_sql`` in UTF-8 when left empty.
    checksum: str = ""

    def __post_init__(self) -> None:
        if not self.checksum:
            object.__setattr__(self, "checksum", hashlib.sha256(self.up_sql.encode()).hexdigest())

    @property
    def label(self) -> str:
        """``<version>_<name>``, the migration's file stem."""
        return f"{self.version}_{self.name}"

    @property
    def up_statements(self) -> list[str]:
        """The up file's statements, in order."""
        return split_statements(self.up_sql)

    @property
    def down_statements(self) -> list[str]:
        """The down file's statements (empty without a down file)."""
        return split_statements(self.down_sql) if self.down_sql is not None else []


def _sort_key(version: str) -> tuple[int, str]:
    return int(version), version


def _headers(text: str, path: Path) -> tuple[tuple[str, ...], bool]:
    """``depends`` and ``transactional`` from the leading ``--`` lines of ``text``."""
    depends: list[str] = []
    transactional = True
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = _HEADER.match(line)
        if match is None:
            continue
        key, value = match.group("key").lower(), match.group("value")
        if key == "depends":
            depends.extend(v for v in re.split(r"[\s,]+", value) if v)
        elif key == "transactional":
            if value.lower() not in ("true", "false"):
                raise MigrationError(
                    f"{path.name}: '-- transactional: {value}' is not true or false.")
            transactional = value.lower() == "true"
        elif close := difflib.get_close_matches(key, HEADER_KEYS, n=1, cutoff=0.75):
            raise MigrationError(
                f"{path.name}: unknown header '-- {key}:'; did you mean '-- {close[0]}:'?")
    for version in depends:
        if not version.isdigit():
            raise DependencyError(
                f"{path.name}: '-- depends: {version}' is not a version (digits, such as "
                "0003).")
    return tuple(depends), transactional


class MigrationSet(Sequence[Migration]):
    """Migrations in the order they apply: by version, each after what it depends on."""

    def __init__(self, migrations: Sequence[Migration], *, source: Path | None = None) -> None:
        ok = isinstance(migrations, Iterable) and not isinstance(migrations, str | bytes)
        items = tuple(migrations) if ok else ()
        validate.check(ok and all(isinstance(m, Migration) for m in items), "migrations",
                       migrations, what="a list of migrations",
                       accepted="a list of Migration objects", kind=TypeError)
        self.source = None if source is None else validate.path(source, "source")
        self._by_version: dict[str, Migration] = {}
        for migration in items:
            if migration.version in self._by_version:
                other = self._by_version[migration.version]
                raise MigrationError(
                    f"version {migration.version} is used twice: {other.label} and "
                    f"{migration.label}.")
            self._by_version[migration.version] = migration
        self._order = self._sorted()

    def _sorted(self) -> list[Migration]:
        known = self._by_version
        for m in known.values():
            for dep in m.depends:
                if dep not in known:
                    raise DependencyError(
                        f"{m.label} depends on {dep}, which is not in the set. Known "
                        f"versions: {sorted(known, key=_sort_key)}.")
        waiting = {v: set(m.depends) for v, m in known.items()}
        ready = [_sort_key(v) for v, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        order: list[Migration] = []
        while ready:
            version = heapq.heappop(ready)[1]
            order.append(known[version])
            for other, deps in waiting.items():
                if version in deps:
                    deps.discard(version)
                    if not deps:
                        heapq.heappush(ready, _sort_key(other))
        if len(order) < len(known):
            raise DependencyError(f"dependency cycle: {self._cycle(waiting)}.")
        return order

    def _cycle(self, waiting: dict[str, set[str]]) -> str:
        start = min((v for v, deps in waiting.items() if deps), key=_sort_key)
        path = [start]
        while True:
            nxt = min(waiting[path[-1]], key=_sort_key)
            if nxt in path:
                cycle = [*path[path.index(nxt) :], nxt]
                return " -> ".join(self._by_version[v].label for v in cycle)
            path.append(nxt)

    @overload
    def __getitem__(self, index: int) -> Migration: ...
    @overload
    def __getitem__(self, index: slice) -> list[Migration]: ...
    def __getitem__(self, index: int | slice) -> Migration | list[Migration]:
        return self._order[index]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Migration]:
        return iter(self._order)

    def __repr__(self) -> str:
        return f"MigrationSet({[m.label for m in self._order]})"

    @property
    def versions(self) -> list[str]:
        """Versions in apply order."""
        return [m.version for m in self._order]

    def get(self, version: str) -> Migration:
        """The migration ``version``; raises ``MigrationError`` naming the known ones."""
        try:
            return self._by_version[version]
        except KeyError:
            raise MigrationError(
                f"no migration {version!r}; known versions: {self.versions}.") from None

    def index(self, version: str) -> int:  # type: ignore[override]
        """Position of ``version`` in apply order."""
        return self._order.index(self.get(version))


def load_migrations(directory: str | Path) -> MigrationSet:
    """Parse and validate a migrations directory (files other than ``*.sql`` are ignored)."""
    root = validate.path(directory, "directory")
    if not root.is_dir():
        raise MigrationError(f"migrations directory {str(root)!r} does not exist.")
    ups: dict[str, tuple[str, Path]] = {}
    downs: dict[str, tuple[str, Path]] = {}
    for path in sorted(root.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: a migration file is named <digits>_<name>.up.sql or "
                "<digits>_<name>.down.sql (e.g. 0001_create_users.up.sql).")
        table = ups if match.group("dir") == "up" else downs
        key = match.group("version")
        if key in table:
            raise MigrationError(
                f"version {key} is used twice: {table[key][1].name} and {path.name}.")
        table[key] = (match.group("name"), path)
    for version, (name, path) in downs.items():
        if version not in ups:
            raise MigrationError(f"{path.name} has no {version}_{name}.up.sql beside it.")
    migrations = []
    for version, (name, path) in ups.items():
        raw = path.read_bytes()
        up_sql = raw.decode("utf-8")
        down = downs.get(version)
        if down is not None and down[0] != name:
            raise MigrationError(
                f"{down[1].name} does not match {path.name}: the names differ.")
        depends, transactional = _headers(up_sql, path)
        migrations.append(Migration(
            version=version, name=name, up_sql=up_sql,
            down_sql=down[1].read_text(encoding="utf-8") if down else None,
            depends=depends, transactional=transactional, up_path=path,
            down_path=down[1] if down else None, checksum=hashlib.sha256(raw).hexdigest()))
    return MigrationSet(migrations, source=root)
