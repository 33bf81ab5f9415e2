"""Fixtures of the reliability tests (the shared ones, ``mongodb_uri`` and friends, are in tests/conftest.py)."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture
def collect_abandoned_sockets() -> Iterator[None]:
    """Collect, at the end of the test, the sockets PyMongo abandoned to the garbage collector.

    When a connection attempt fails mid-handshake (a server going down or closing the connection, a
    refused TLS handshake), PyMongo drops the socket without closing it. Its ResourceWarning would
    otherwise surface in whichever later test the garbage collector happens to run in (the suite
    turns it into an error there). Tests that make servers fail use this fixture.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
