"""A stand-in for a model server's command-line tool, run with ``sys.executable``.

``model_cli.py --url URL load NAME`` asks the server at ``URL`` to load ``NAME``
(``POST /admin/load``) and prints ``loaded NAME``; a refusal is printed on stderr as
``error: ...`` with exit status 1, an unreachable server with exit status 2. Like real
CLIs, what it prints is a claim: ``cli_loader.CliLoader`` checks it with requests of its
own. Standard library only, so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model_cli")
    parser.add_argument("--url", required=True, help="the model server, http://host:port")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("load", help="load a model").add_argument("model")
    args = parser.parse_args(argv)
    request = urllib.request.Request(
        f"{args.url}/admin/load", data=json.dumps({"model": args.model}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        print(f"error: {detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {body['loaded']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
