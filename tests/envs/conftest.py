"""Env-test fixtures (helpers live in ``envkit.py``)."""

from __future__ import annotations

import pytest
from envkit import FAST, make


@pytest.fixture(scope="module")
def env_cache():
    """Envs built once per test module, keyed by (id, kwargs); callers reset(seed) before use."""
    cache: dict = {}

    def get(env_id: str, **kwargs):
        key = (env_id, repr(sorted((FAST | kwargs).items())))
        if key not in cache:
            cache[key] = make(env_id, **kwargs)
        return cache[key]

    yield get
    for e in cache.values():
        e.close()
