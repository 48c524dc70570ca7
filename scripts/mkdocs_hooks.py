"""MkDocs hooks: reference sections generated from the code at build time.

A page writes ``<!-- generated: NAME -->`` on a line of its own; the build replaces it
with what the code says today, so the reference cannot go stale:

- ``events``: ``pytest_resilience.kinds.markdown_table()``;
- ``report-schema``: the tables of ``report.schema.json``, and the schema itself;
- ``cli``: ``--help`` of every ``pytest-resilience`` command;
- ``options``, ``ini``, ``fixtures``, ``markers``: from ``pytest -p resilience --help``,
  ``--fixtures`` and ``--markers``, run in an empty directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from typing import Any

_MARK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
_CLI_LEVELS = (
    [], ["status"], ["report"], ["report", "render"], ["report", "compare"], ["compare"],
    ["chroma"], ["migrate"],
)


def _fence(text: str, lang: str = "text") -> str:
    return f"```{lang}\n{text.rstrip()}\n```\n"


def _events() -> str:
    from pytest_resilience import kinds

    return kinds.markdown_table()


def _cli() -> str:
    from pytest_resilience._cli import main

    parts = []
    os.environ["COLUMNS"] = "88"
    for argv in _CLI_LEVELS:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main([*argv, "--help"])
        title = " ".join(["pytest-resilience", *argv])
        parts.append(f"### `{title}`\n\n{_fence(out.getvalue())}")
    return "\n".join(parts)


@cache
def _pytest(*args: str) -> str:
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", COLUMNS="88")
    env.pop("PYTEST_ADDOPTS", None)
    with tempfile.TemporaryDirectory() as empty:
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "resilience", *args],
                              cwd=empty, env=env, capture_output=True, text=True, check=False,
                              timeout=120)
    if done.returncode not in (0, 5):
        raise RuntimeError(f"pytest {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _options() -> str:
    text = _pytest("--help")
    start = text.index("pytest-resilience:")
    block = text[start:].split("\n\n", 1)[0]
    return _fence(block)


def _ini() -> str:
    lines, keep = [], False
    for line in _pytest("--help").splitlines():
        if re.match(r"^  resilience_", line):
            keep = True
        elif not line.startswith("     "):
            keep = False
        if keep:
            lines.append(line)
    return _fence("\n".join(lines))


def _fixtures() -> str:
    blocks = re.split(r"\n(?=\S)", _pytest("--fixtures"))
    ours = [b for b in blocks
            if b[:1].isalpha() and "pytest_resilience" in b.split("\n", 1)[0]]
    rows = []
    for block in ours:
        head, _, doc = block.partition("\n")
        name = head.split(" ", 1)[0]
        scope = re.search(r"\[(\w+) scope\]", head)
        summary = " ".join(doc.split())
        rows.append(f"| `{name}` | {scope.group(1) if scope else 'function'} | {summary} |")
    return "| fixture | scope | what it gives |\n|---|---|---|\n" + "\n".join(sorted(rows)) + "\n"


def _markers() -> str:
    lines = [line for line in _pytest("--markers").splitlines()
             if line.startswith("@pytest.mark.")]
    builtin = ("filterwarnings", "skip", "skipif", "xfail", "parametrize", "usefixtures",
               "tryfirst", "trylast")
    ours = [line for line in lines if not line[len("@pytest.mark."):].startswith(builtin)]
    rows = []
    for line in ours:
        signature, _, doc = line.partition(": ")
        rows.append(f"| `{signature.replace('|', ' or ')}` | {doc.replace('|', ' or ')} |")
    return "| marker | what it does |\n|---|---|\n" + "\n".join(rows) + "\n"


def _schema_table(schema: dict[str, Any], node: dict[str, Any]) -> str:
    required = set(node.get("required", []))
    rows = []
    for name, prop in node.get("properties", {}).items():
        if "$ref" in prop:
            ref = prop["$ref"].rsplit("/", 1)[-1]
            kind = f"see `{ref}`"
            desc = prop.get("description", schema["$defs"][ref].get("description", ""))
        else:
            kind = prop.get("type", "enum" if "enum" in prop else "const" if "const" in prop
                            else "")
            kind = " or ".join(kind) if isinstance(kind, list) else kind
            if "enum" in prop:
                kind += " " + "/".join(map(str, prop["enum"]))
            desc = prop.get("description", "")
        rows.append(f"| `{name}` | {'yes' if name in required else ''} | {kind} | {desc} |")
    return "| key | required | type | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def _report_schema() -> str:
    from pytest_resilience.report import SCHEMA

    parts = [f"{SCHEMA['description']}\n", "### Top level\n", _schema_table(SCHEMA, SCHEMA)]
    parts += ["### `summary`\n", _schema_table(SCHEMA, SCHEMA["properties"]["summary"])]
    for name in ("test", "budget", "verdict", "stats"):
        parts += [f"### `{name}`\n", _schema_table(SCHEMA, SCHEMA["$defs"][name])]
    parts += ["### The JSON Schema\n",
              _fence(json.dumps(SCHEMA, indent=2), "json")]
    return "\n".join(parts)


GENERATORS: dict[str, Callable[[], str]] = {
    "events": _events,
    "report-schema": _report_schema,
    "cli": _cli,
    "options": _options,
    "ini": _ini,
    "fixtures": _fixtures,
    "markers": _markers,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` line; an unknown NAME fails the build."""

    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise KeyError(f"<!-- generated: {name} -->: no such generator; known: "
                           f"{', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return _MARK.sub(generate, markdown)
