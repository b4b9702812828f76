"""Shared fixtures: the toy and the default T&D system, built once per test session.

Both come from :func:`smartnet_gym.grid.build.build_system` and so from its disk cache
(``$SMARTNET_GYM_CACHE`` or ``~/.cache/smartnet_gym``): the first session builds them (toy ~1 s,
default ~6-10 s), later sessions load them in well under a second.

The systems are shared by every test of the session: a test that changes ``system.net`` (or any
array) must work on ``copy.deepcopy(system)`` instead.
"""

from __future__ import annotations

import pytest

from smartnet_gym.config import ScenarioConfig, load_scenario
from smartnet_gym.grid.build import build_system
from smartnet_gym.grid.system import TDSystem


@pytest.fixture(scope="session")
def toy_config() -> ScenarioConfig:
    """The ``toy`` preset (tiny T&D system, one MV area)."""
    return load_scenario("toy")


@pytest.fixture(scope="session")
def toy_system(toy_config: ScenarioConfig) -> TDSystem:
    """The toy T&D system (5-bus HV mesh + one 8-bus MV feeder); do not mutate it."""
    return build_system(toy_config)


@pytest.fixture(scope="session")
def default_config() -> ScenarioConfig:
    """Default scenario: "HVMV4-2sw" (SimBench 1-HVMV-mixed-all-2-sw, 4 MV areas), default knobs."""
    return ScenarioConfig()


@pytest.fixture(scope="session")
def default_system(default_config: ScenarioConfig) -> TDSystem:
    """The default SimBench T&D system (845 buses, 4 areas); do not mutate it."""
    return build_system(default_config)


# Property tests draw their examples from a fixed seed in CI so that a run is reproducible;
# `pytest --hypothesis-profile=explore` draws new ones.
from hypothesis import settings as _hyp_settings

_hyp_settings.register_profile("ci", derandomize=True)
_hyp_settings.register_profile("explore", derandomize=False)
_hyp_settings.load_profile("ci")
