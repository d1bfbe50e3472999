"""Fixtures shared by the in-process asyncio tests."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(params=["asyncio", "uvloop"])
def run_loop(request):
    """``asyncio.run`` or ``uvloop.run``: the gateway runs on either (``cluster.event_loop``)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run
    return asyncio.run
