"""Open a page in headless Chromium, take a screenshot, and look at what came out.

The browser is the Debian package `chromium-headless-shell` (or `chromium`), which
`make system-deps` installs. A test that needs it fails, naming the package, when it is
missing: it never skips.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

BROWSERS = ("chromium-headless-shell", "chromium")
PACKAGE = "chromium-headless-shell"


def browser() -> str:
    """The browser's path; fails the test when none is installed."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"no headless browser: install the Debian package {PACKAGE} (or chromium), "
        "e.g. `make system-deps` as root"
    )


def screenshot(page: Path, png: Path, size: str = "1280,2000") -> list[str]:
    """Screenshot `page` into `png`; return the browser's console lines (should be none).

    `--enable-logging=stderr --v=0` prints every console message as an `INFO:CONSOLE` line
    (an uncaught exception reads `"Uncaught ..."`); the report page has no script at all, so
    any console line is a failure.
    """
    result = subprocess.run(
        [browser(), "--no-sandbox", "--disable-gpu", f"--user-data-dir={png.parent / 'profile'}",
         f"--screenshot={png}", f"--window-size={size}", "--enable-logging=stderr", "--v=0",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def png_summary(png: Path) -> tuple[int, int, int, int]:
    """(width, height, distinct filtered rows, distinct byte values) of a PNG, by zlib alone.

    A single-colour image filters to the same row over and over; a page with text, tables and
    charts gives hundreds of different rows.
    """
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, width, height, depth, colour = 8, 0, 0, 0, 0
    idat = bytearray()
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw = zlib.decompress(bytes(idat))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    stride = 1 + width * channels * depth // 8
    rows = {raw[i : i + stride] for i in range(0, len(raw), stride)}
    return width, height, len(rows), len(set(raw))
