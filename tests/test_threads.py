"""The BLAS thread limit: applied from the environment variable, bad values named."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info

from smartnet_gym import threads


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_default_is_one_blas_thread(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    monkeypatch.setattr(threads, "_applied", None)
    assert threads.limit_blas_threads() == 1
    assert _blas_threads() == {1}


def test_zero_leaves_the_pools_alone(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "0")
    assert threads.limit_blas_threads() is None


@pytest.mark.parametrize("raw", ["-1", "two"])
def test_bad_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv(threads.ENV_VAR, raw)
    with pytest.raises(ValueError, match=threads.ENV_VAR):
        threads.limit_blas_threads()
