from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from needs import needs_shared_data


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the project root; skips the test when it is absent (a user's clone), fails it
    where it is required (``MONAI_AG_REQUIRE_SHARED=1``, CI)."""
    return needs_shared_data()


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: a suite that cannot run must not look green."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if _ci() and skipped and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(
                f"CI=true: {skipped} test(s) skipped, which fails the run (pytest -rs lists the reasons)",
                red=True,
                bold=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
