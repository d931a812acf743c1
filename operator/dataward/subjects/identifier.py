"""Copy a request's identifier Secret into a pod's memory, for a store in another namespace.

`python -m dataward.subjects.identifier --secret NS/NAME --dir DIR` runs as the init
container of a subject-request Job whose store is not in the request's namespace (a Secret
volume cannot cross namespaces). It reads the Secret with the pod's own token (a Role grants
`get` on exactly that Secret) and writes one file per key into DIR, a memory-backed emptyDir
the main container reads with `--identifier-dir`. Nothing is printed but the count of keys:
the values are personal data.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dataward.controller.kube import Kube, KubeError, load_api_client

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def write_identifier(data: dict[str, str], directory: Path) -> int:
    """Write each base64 value of a Secret's data to DIR/KEY (mode 0400); the count written."""
    written = 0
    for key, value in sorted(data.items()):
        if not key or set(key) - _KEY_CHARS or key.startswith("."):
            raise ValueError("the identifier Secret has a key that is not a file name")
        path = directory / key
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(base64.b64decode(value))
        written += 1
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the Secret into the directory; exit 1 (saying only why) when it cannot."""
    parser = argparse.ArgumentParser(prog="python -m dataward.subjects.identifier")
    parser.add_argument("--secret", required=True, metavar="NAMESPACE/NAME")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG") or None)
    args = parser.parse_args(argv)
    namespace, _, name = str(args.secret).partition("/")
    try:
        secret = Kube(load_api_client(args.kubeconfig)).get("Secret", namespace, name)
    except KubeError as error:
        print(f"identifier Secret {namespace}/{name}: {error}", file=sys.stderr)
        return 1
    if secret is None:
        print(f"identifier Secret {namespace}/{name} does not exist", file=sys.stderr)
        return 1
    try:
        count = write_identifier(dict(secret.get("data") or {}), args.dir)
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 1
    print(f"identifier: {count} key(s) written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
