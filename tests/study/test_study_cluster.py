"""`smartnet-gym study --address` on a 2-node Ray cluster simulated on this machine."""

from __future__ import annotations

import pandas as pd
import pytest
from studykit import computed, write_study

pytest.importorskip("ray")
from ray.cluster_utils import Cluster

from smartnet_gym.cli import main
from smartnet_gym.study.config import load_study
from smartnet_gym.study.engines import InProcessEngine
from smartnet_gym.study.runner import run_study


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node with one CPU each, as `ray start` would make on two machines."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    yield c
    c.shutdown()


def test_a_two_node_cluster_gives_the_same_cells(tmp_path, cluster, capsys):
    cfg = write_study(tmp_path, days=[10, 100, 200, 300], steps=8)
    code = main(["study", "--config", str(cfg), "--out", str(tmp_path / "cluster"), "--address", cluster.address,
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    local = run_study(load_study(cfg), tmp_path / "local", InProcessEngine(), progress=False)
    assert local.ran == 24
    on_cluster = pd.read_parquet(tmp_path / "cluster" / "cells.parquet")
    pd.testing.assert_frame_equal(computed(on_cluster), computed(pd.read_parquet(tmp_path / "local" / "cells.parquet")),
                                  check_exact=True)
    nodes = {w.rsplit(":", 1)[-1] for w in on_cluster["worker"]}
    assert len(nodes) == 2                              # both nodes ran cells


def test_without_address_a_study_starts_its_own_instance_beside_a_cluster(tmp_path, cluster, capsys):
    """A `ray start` cluster on the machine does not capture (or break) the embedded default."""
    cfg = write_study(tmp_path, days=[10], steps=4)
    code = main(["study", "--config", str(cfg), "--out", str(tmp_path / "own"), "--workers", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    nodes = {w.rsplit(":", 1)[-1] for w in pd.read_parquet(tmp_path / "own" / "cells.parquet")["worker"]}
    assert nodes.isdisjoint({n.node_id[:8] for n in cluster.list_all_nodes()})
