"""`dataward run` caps glibc's malloc arenas, so its threads share two heaps (issue 11's RSS)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dataward

# Eight threads that each allocate (and hold) blocks too large for Python's own allocator,
# all alive at once, then glibc's malloc_stats(), which prints one "Arena N:" per arena.
_THREADS = textwrap.dedent(
    """
    import ctypes, sys, threading
    if sys.argv[1] == "limit":
        from dataward.controller.operator import limit_malloc_arenas
        assert limit_malloc_arenas()
    barrier = threading.Barrier(8)
    held = []
    def work():
        held.append([bytearray(4096) for _ in range(64)])
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    ctypes.CDLL(None).malloc_stats()
    """
)


def _arenas(mode: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _THREADS, mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    package_root = str(Path(dataward.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_threads_share_at_most_two_arenas_once_limited() -> None:
    if "glibc" not in (os.confstr("CS_GNU_LIBC_VERSION") or ""):
        pytest.fail("this test needs Linux with glibc, which the operator's image has")
    # Without the cap the same threads spread over several arenas: the probe can tell.
    assert _arenas("plain", _env()) > 2
    assert _arenas("limit", _env()) <= 2


def test_an_explicit_environment_setting_stands() -> None:
    from dataward.controller.operator import limit_malloc_arenas

    env = _env(MALLOC_ARENA_MAX="6")
    os.environ["MALLOC_ARENA_MAX"] = "6"
    try:
        assert limit_malloc_arenas() is False
    finally:
        del os.environ["MALLOC_ARENA_MAX"]
    assert _arenas("plain", env) > 2
