"""The package is typed (it ships ``py.typed``): ``mypy --strict`` finds nothing in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_given_the_package_when_checked_by_mypy_strict_then_it_reports_no_issue() -> None:
    api = pytest.importorskip("mypy.api")
    source = Path(__file__).resolve().parents[1] / "src" / "ace_comms"
    out, err, status = api.run(["--strict", "--cache-dir", os.devnull, str(source)])
    assert status == 0, out + err
