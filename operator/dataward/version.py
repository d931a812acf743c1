"""The installed version of Dataward, from the package metadata."""

from __future__ import annotations

from importlib import metadata

import dataward


def version() -> str:
    """The distribution's version; the package's own when it runs from a source tree."""
    try:
        return metadata.version("dataward")
    except metadata.PackageNotFoundError:
        return dataward.__version__
