"""The hostile-input tests' fixtures; the registry, portal and clock ones they share with the
integration tests are plugins (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.settings import Settings
from services.ingest.main import build_app as build_ingest
from tests.support.api import issuer_for, new_police_client, police_token, running


@pytest.fixture
async def engine(matcher_engine: AsyncEngine) -> AsyncEngine:
    """Most hostile input is aimed at the registry: these tests act as the matcher."""
    return matcher_engine


@pytest.fixture
async def ingest(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The ingest app as main.py builds it."""
    async with running(build_ingest(settings, issuer=issuer_for(settings))) as client:
        yield client


@pytest.fixture
async def police(ingest: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    """A bearer token for WMP's police client, from the OAuth2 endpoint."""
    client_id, secret = await new_police_client(settings, "WMP")
    return {"Authorization": f"Bearer {await police_token(ingest, client_id, secret)}"}
