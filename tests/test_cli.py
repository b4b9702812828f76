"""The command line: contract keys, MPS export re-solved from file, user errors exit 2 without traceback."""

from __future__ import annotations

import json
import os

import pytest

from smartnet_gym.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scenarios_lists_presets(capsys):
    code, out, _ = run(capsys, "scenarios")
    assert code == 0
    for name in ("italy-like", "spain-like", "denmark-like", "toy"):
        assert name in out


@pytest.mark.parametrize("scheme", ["CS_A", "CS_B", "CS_C", "CS_D", "CS_E"])
def test_clear_json_keys(capsys, scheme):
    code, out, _ = run(capsys, "clear", "--scenario", "toy", "--scheme", scheme, "--step", "50", "--json")
    assert code == 0
    rep = json.loads(out)
    for key in ("scheme", "variant", "status", "objective_eur", "market_cost_eur", "evaluated_cost_eur",
                "slack_mw", "activated_mw", "uniform_price_eur_per_mwh", "solve_ms"):
        assert key in rep
    assert rep["scheme"] == scheme and rep["status"] == "optimal"


@pytest.mark.parametrize("scheme,variant", [("CS_A", "centralized"), ("CS_D", "centralized"),
                                            ("CS_B", "centralized"), ("CS_D", "decentralized")])
def test_export_lp_resolves_to_the_same_cost(capsys, tmp_path, scheme, variant):
    import highspy

    mps = tmp_path / "stage.mps"
    code, out, _ = run(capsys, "clear", "--scenario", "toy", "--scheme", scheme, "--variant", variant, "--step",
                       "50", "--lp", "--json", "--export-lp", str(mps))
    assert code == 0
    rep = json.loads(out)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(mps))
    h.run()
    obj = h.getInfo().objective_function_value
    assert obj == pytest.approx(rep["final_stage_objective_eur"], rel=1e-6, abs=1e-6)
    if scheme in ("CS_A", "CS_D") and variant == "centralized":   # one-stage schemes: the JSON objective
        assert obj == pytest.approx(rep["objective_eur"], rel=1e-6, abs=1e-6)


def test_cs_d_decentralized_equals_centralized_on_toy(capsys):
    reps = []
    for variant in ("centralized", "decentralized"):
        code, out, _ = run(capsys, "clear", "--scenario", "toy", "--scheme", "CS_D", "--variant", variant,
                           "--step", "50", "--lp", "--json")
        assert code == 0
        reps.append(json.loads(out))
    assert reps[1]["evaluated_cost_eur"] == pytest.approx(reps[0]["evaluated_cost_eur"], rel=1e-6)


@pytest.mark.parametrize("argv,needle", [
    (["clear", "--scenario", "no-such-preset"], "unknown scenario preset"),
    (["clear", "--scenario", "missing.yaml"], "does not exist"),
    (["clear", "--scenario", "toy", "--scheme", "CS_X"], "unknown scheme"),
    (["compare", "--scenario", "toy", "--steps", "0", "--out", "x"], "--steps must be >= 1"),
    (["compare", "--scenario", "toy", "--schemes", "CS_A,CS_Q", "--out", "x"], "unknown scheme"),
])
def test_user_errors_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as e:   # argparse-level errors
        main(argv) if argv[0] != "clear" or "--scheme" in argv else None
        raise SystemExit(main(argv))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("yaml_text,needle", [
    ("extends: toy\nmarket:\n  horizon_periods: -1\n", "market.horizon_periods"),
    ("extends: toy\ngrid:\n  colour: red\n", "grid.colour: unknown field"),
    ("extends: toy\ngrid:\n  source: simbench\n  simbench_code: 1-HVMV-nowhere-9-sw\n", "1-HVMV-nowhere-9-sw"),
    ("extends: toy\nmarket:\n  balance_penalty_eur_per_mwh: .inf\n", "market.balance_penalty_eur_per_mwh"),
    ("extends: toy\nmarket:\n  price_cap_eur_per_mwh: .nan\n", "market.price_cap_eur_per_mwh"),
    ("extends: toy\nflex:\n  cost_up_eur_per_mwh: [40, .inf]\n", "flex.cost_up_eur_per_mwh.1"),
    ("extends: toy\ncba:\n  ict_annual_eur: {CS_A: -.inf}\n", "cba.ict_annual_eur.CS_A"),
])
def test_bad_yaml_exit_2(capsys, tmp_path, yaml_text, needle):
    p = tmp_path / "s.yaml"
    p.write_text(yaml_text)
    code, _, err = run(capsys, "clear", "--scenario", str(p))
    assert code == 2
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("content", ['{"a": 1}', "not json at all", "[1, 2]"])
def test_pandapower_json_that_is_no_net_exits_2(capsys, tmp_path, monkeypatch, content):
    monkeypatch.setenv("SMARTNET_GYM_CACHE", str(tmp_path / "cache"))
    net = tmp_path / "net.json"
    net.write_text(content)
    p = tmp_path / "s.yaml"
    p.write_text(f"extends: toy\ngrid:\n  source: pandapower_json\n  pandapower_json: {net}\n")
    code, _, err = run(capsys, "clear", "--scenario", str(p))
    assert code == 2
    assert str(net) in err and "not a pandapower net" in err and "Traceback" not in err


def test_compare_refuses_nonempty_out_and_writes_all_files(capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, _, err = run(capsys, "compare", "--scenario", "toy", "--steps", "2", "--out", str(out),
                       "--physics", "linear", "--no-progress")
    assert code == 2 and "--force" in err
    assert sorted(os.listdir(out)) == ["keep.txt"]
    code, _, _ = run(capsys, "compare", "--scenario", "toy", "--steps", "2", "--out", str(out / "new"),
                     "--physics", "linear", "--no-progress", "--schemes", "CS_A,CS_D")
    assert code == 0
    assert sorted(os.listdir(out / "new")) == ["compare.png", "run.json", "steps.csv", "summary.csv", "timeline.png"]


def test_compare_unwritable_out(capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run(capsys, "compare", "--scenario", "toy", "--steps", "1", "--out", str(ro / "x" / "y"),
                           "--physics", "linear", "--no-progress")
    finally:
        ro.chmod(0o700)
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    assert code == 2 and "not writable" in err


def test_compare_horizon_past_profiles(capsys, tmp_path):
    p = tmp_path / "late.yaml"
    p.write_text("extends: toy\ndata:\n  start_day: 365\n")
    code, _, err = run(capsys, "compare", "--scenario", str(p), "--steps", "96", "--out", str(tmp_path / "o"),
                       "--physics", "linear", "--no-progress")
    assert code == 2 and "steps" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["scenarios", "validate-grid", "clear", "compare", "market-power", "train",
                                     "evaluate", "benchmark"])
def test_every_subcommand_has_help(capsys, command):
    from smartnet_gym.cli import COMMANDS

    assert command in COMMANDS
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: smartnet-gym" in capsys.readouterr().out
