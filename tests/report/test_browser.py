"""A missing browser fails the tests that need it, naming the package: never a skip."""

from __future__ import annotations

import pytest

from tests.report import browser


def test_a_missing_browser_fails_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="Debian package chromium-headless-shell"):
        browser.browser()
