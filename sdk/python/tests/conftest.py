"""Shared fixtures. The offline tests need only the repository (its ``contracts/``); the
server tests need a running ``ace-comms serve`` with the tour's configuration
(``examples/tour.yaml``: enforced authentication, an admin, an agent and an approver key),
named by ``ACE_TEST_SERVER`` and the keys ``ACE_TEST_ADMIN_KEY``, ``ACE_TEST_AGENT_KEY``,
``ACE_TEST_APPROVER_KEY`` — the Rust test ``crates/ace-cli/tests/it/python_sdk.rs`` starts one
and runs this suite against it. Without ``ACE_TEST_SERVER`` they are skipped, saying so."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

#: The repository root (``sdk/python/tests`` is three levels below it).
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def repo() -> Path:
    assert (REPO / "contracts" / "comms" / "envelope.schema.json").is_file(), REPO
    return REPO


class Server:
    """Where the server is and the tour's three keys."""

    def __init__(self) -> None:
        self.url = os.environ["ACE_TEST_SERVER"]
        self.admin = os.environ.get("ACE_TEST_ADMIN_KEY", "tour-admin-key")
        self.agent = os.environ.get("ACE_TEST_AGENT_KEY", "tour-agent-key")
        self.approver = os.environ.get("ACE_TEST_APPROVER_KEY", "tour-approver-key")


@pytest.fixture(scope="session")
def server() -> Server:
    if not os.environ.get("ACE_TEST_SERVER"):
        pytest.skip("ACE_TEST_SERVER is not set: no server to test against")
    return Server()


@pytest.fixture
def unique() -> str:
    """A token unique to the test, for subjects and consumer names."""
    return uuid.uuid4().hex[:12]
