"""Sweep end to end: real storage files, real subprocess objectives, resume, reuse, constraints, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastgrid import Sweep, SweepChangedError, SweepFileError, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

CALLS: list[dict[str, Any]] = []
FAIL_POINTS: set[int] = set()

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    config_file, output_file, log = sys.argv[1], sys.argv[2], sys.argv[3]
    cfg = json.load(open(config_file))
    with open(os.path.join(os.path.dirname(output_file), "pid"), "w") as f:
        f.write(str(os.getpid()))
    with open(log, "a") as f:
        f.write(json.dumps(cfg["x"]) + "\\n")
    if os.path.exists("slow"):
        time.sleep(120)  # far past any run of the test (the test interrupts it)
    if cfg["x"] == cfg.get("fail_at"):
        sys.exit(3)
    json.dump({"score": cfg["x"] * 2, "trades": cfg["x"]}, open(output_file, "w"))
    """
)


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    FAIL_POINTS.clear()


def objective(config: dict[str, Any]) -> dict[str, float]:
    CALLS.append(json.loads(json.dumps(config)))
    if config["x"] in FAIL_POINTS:
        raise RuntimeError(f"x={config['x']} failed")
    return {"score": float(config["x"] * 10 + config["y"]), "trades": float(config["x"])}


def xy(nx: int = 3) -> dict[str, Any]:
    return {"x": {"type": "int", "low": 0, "high": nx - 1}, "y": {"type": "grid", "values": [1, 2]}}


def sweep(tmp_path: Path, **kw: Any) -> Sweep:
    args: dict[str, Any] = {
        "name": "t",
        "parameters": xy(),
        "objective": objective,
        "metric": "score",
        "direction": "maximize",
        "directory": tmp_path,
        "progress": False,
    }
    args.update(kw)
    return Sweep(**args)


def load(tmp_path: Path, name: str = "t") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(None, directory=tmp_path))


def test_grid_sweep_runs_every_point_once_and_keeps_the_bookkeeping(tmp_path: Path) -> None:
    config = tmp_path / "default.json"
    config.write_text(json.dumps({"x": 0, "y": 0, "risk": {"cap": 0.5}}))
    result = sweep(tmp_path, config=config).run()
    assert sorted((c["x"], c["y"]) for c in CALLS) == [(x, y) for x in range(3) for y in (1, 2)]
    assert all(c["risk"] == {"cap": 0.5} for c in CALLS)
    assert result.best is not None and result.best["params"] == {"x": 2, "y": 2}
    assert result.best["values"] == [22.0]
    assert result.best_config == {"x": 2, "y": 2, "risk": {"cap": 0.5}}
    assert result.best_config_path == tmp_path / "runs" / "t" / "best_config.json"
    assert json.loads(result.best_config_path.read_text()) == result.best_config
    study = load(tmp_path)
    assert study.study_name == "t"
    first = study.trials[0]
    assert first.user_attrs["metrics"] == {"score": 1.0, "trades": 0.0}
    assert first.user_attrs["attempts"] == 1 and first.user_attrs["feasible"] is True
    assert isinstance(first.user_attrs["key"], str) and isinstance(first.user_attrs["fingerprint"], str)
    assert first.params == {"x": 0, "y": 1}
    assert len({t.user_attrs["key"] for t in study.trials}) == 6


def test_resume_never_reruns_completed_points_and_retries_failed_ones(tmp_path: Path) -> None:
    FAIL_POINTS.add(1)
    first = sweep(tmp_path, max_trials=4, retry_failed=0).run()
    assert [(c["x"], c["y"]) for c in CALLS] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert first.counts["complete"] == 2 and first.counts["failed"] == 2
    assert {r["reason"] for r in first.rows if r["state"] == "FAIL"} == {"RuntimeError: x=1 failed"}
    CALLS.clear()
    FAIL_POINTS.clear()
    second = sweep(tmp_path, retry_failed=0).run()
    assert sorted((c["x"], c["y"]) for c in CALLS) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert second.counts["complete"] == 6
    assert second.ran == 4
    CALLS.clear()
    third = sweep(tmp_path).run()
    assert CALLS == [] and third.ran == 0 and third.best is not None


def test_a_failed_point_is_retried_in_the_same_run_up_to_retry_failed(tmp_path: Path) -> None:
    FAIL_POINTS.add(2)
    result = sweep(tmp_path, retry_failed=1).run()
    assert Counter((c["x"], c["y"]) for c in CALLS)[(2, 1)] == 2
    assert result.counts["failed"] == 4 and result.counts["complete"] == 4


def test_duplicate_suggestions_reuse_the_completed_trial(tmp_path: Path) -> None:
    params = {"x": {"type": "grid", "values": [0, 1, 2]}, "y": 1}
    result = sweep(tmp_path, parameters=params, sampler={"name": "random", "seed": 1}, max_trials=15).run()
    complete = [r for r in result.rows if r["state"] == "COMPLETE"]
    assert len(complete) == 15
    reused = [r for r in complete if r["reused"] is not None]
    assert len(CALLS) == 15 - len(reused) == len({c["x"] for c in CALLS}) == 3
    by_number = {r["number"]: r for r in result.rows}
    for r in reused:
        original = by_number[r["reused"]]
        assert original["reused"] is None and original["params"] == r["params"]
        assert original["values"] == r["values"]


def test_search_workers_never_run_one_point_twice_at_once(tmp_path: Path) -> None:
    # Two points, eight suggestions, two workers: duplicates are suggested while their twin is
    # still running; the later one waits for it and reuses its result.
    script = tmp_path / "slow_point.py"
    script.write_text(
        "import json, sys, time\n"
        "time.sleep(0.4)\n"
        "open(sys.argv[2], 'a').write(sys.argv[1] + '\\n')\n"
        "print(json.dumps({'score': float(sys.argv[1])}))\n"
    )
    log = tmp_path / "ran.txt"
    result = Sweep(
        direction="minimize",
        name="twins",
        parameters={"x": {"type": "grid", "values": [0, 1]}},
        objective=[sys.executable, str(script), "{params.x}", str(log)],
        metric="score",
        sampler={"name": "random", "seed": 3},
        max_trials=8,
        workers=2,
        directory=tmp_path,
        progress=False,
    ).run()
    assert Counter(log.read_text().split()) == Counter({"0": 1, "1": 1})
    complete = [r for r in result.rows if r["state"] == "COMPLETE"]
    assert len(complete) == 8 and sum(r["reused"] is not None for r in complete) == 6
    assert {r["params"]["x"]: r["values"] for r in complete} == {0: [0.0], 1: [1.0]}


def staged(config: dict[str, Any], trial: Any) -> float:
    """Reports an intermediate value per step, as a long backtest would per month."""
    CALLS.append(config)
    for step in range(5):
        trial.report(float(config["x"]), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"x={config['x']}")
    return float(config["x"])


def test_a_callable_that_takes_the_trial_is_pruned_and_a_pruned_point_is_not_run_again(
    tmp_path: Path,
) -> None:
    pruner = {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0}
    params = {"x": {"type": "int", "low": 0, "high": 5}}
    result = sweep(tmp_path, parameters=params, objective=staged, direction="minimize", pruner=pruner).run()
    rows = sorted(result.rows, key=lambda r: r["number"])
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"] + ["PRUNED"] * 4
    assert rows[2]["reason"] == "pruned: x=2 (at step 0)"
    assert result.counts["pruned"] == 4 and result.counts["failed"] == 0
    assert result.best is not None and result.best["params"] == {"x": 0}
    frozen = load(tmp_path).trials
    assert frozen[0].intermediate_values == {step: 0.0 for step in range(5)}
    CALLS.clear()
    again = sweep(tmp_path, parameters=params, objective=staged, direction="minimize", pruner=pruner).run()
    assert CALLS == [] and again.ran == 0


def test_where_shapes_the_grid(tmp_path: Path) -> None:
    result = sweep(tmp_path, where=["x < y"]).run()
    assert sorted((c["x"], c["y"]) for c in CALLS) == [(0, 1), (0, 2), (1, 2)]
    assert len(result.rows) == 3


def test_where_in_search_mode_asks_again_and_counts_only_evaluated_trials(tmp_path: Path) -> None:
    result = sweep(tmp_path, sampler={"name": "random", "seed": 2}, where=["x < y"], max_trials=20).run()
    assert all(c["x"] < c["y"] for c in CALLS)
    # Issue 11: violations were FAIL trials that counted toward max_trials and taught TPE nothing.
    assert [r for r in result.rows if r["state"] != "COMPLETE"] == []
    assert len(result.rows) == 20 and result.counts["failed"] == 0
    assert result.counts["rejected"] > 0
    study = load(tmp_path)
    rejected = [t for t in study.trials if t.system_attrs.get("fastgrid:rejected")]
    assert len(rejected) == result.counts["rejected"]
    # Recorded PRUNED with a violated constraint: TPE ranks them among the bad trials.
    assert all(t.state.name == "PRUNED" and t.constraints == {"where: x < y": 1.0} for t in rejected)
    assert all(t.params["x"] >= t.params["y"] for t in rejected)


def test_result_constraints_mark_infeasible_trials_and_best_is_best_feasible(tmp_path: Path) -> None:
    result = sweep(tmp_path, require=["trades <= 1"]).run()
    infeasible = {(r["params"]["x"], r["params"]["y"]) for r in result.rows if not r["feasible"]}
    assert infeasible == {(2, 1), (2, 2)}
    assert result.best is not None and result.best["params"] == {"x": 1, "y": 2}
    study = load(tmp_path)
    assert all(t.user_attrs["constraints"] == [float(t.params["x"] > 1)] for t in study.trials)


def test_several_objectives_give_the_feasible_pareto_front(tmp_path: Path) -> None:
    result = sweep(
        tmp_path, direction=["maximize", "minimize"], metrics=["score", "trades"], metric="score"
    ).run()
    front = {(r["params"]["x"], r["params"]["y"]) for r in result.best_trials}
    # Higher x raises the score and the trades; y raises only the score: y=2 dominates.
    assert front == {(0, 2), (1, 2), (2, 2)}


def test_a_changed_config_is_refused_and_fresh_or_allow_changed_override(tmp_path: Path) -> None:
    config = tmp_path / "default.json"
    config.write_text(json.dumps({"x": 0, "y": 0}))
    sweep(tmp_path, config=config).run()
    config.write_text(json.dumps({"x": 0, "y": 0, "extra": 1}))
    with pytest.raises(SweepChangedError, match="default config") as info:
        sweep(tmp_path, config=config).run()
    assert "fresh=True (--fresh)" in str(info.value) and "allow_changed=True" in str(info.value)
    CALLS.clear()
    assert sweep(tmp_path, config=config, allow_changed=True).run().ran == 0
    assert CALLS == []
    result = sweep(tmp_path, config=config, fresh=True).run()
    assert len(CALLS) == 6 and len(result.rows) == 6


def test_a_changed_parameters_tree_is_refused_and_allow_changed_reuses_equal_points(tmp_path: Path) -> None:
    sweep(tmp_path).run()
    with pytest.raises(SweepChangedError, match="parameters tree"):
        sweep(tmp_path, parameters=xy(4)).run()
    CALLS.clear()
    result = sweep(tmp_path, parameters=xy(4), allow_changed=True).run()
    assert sorted((c["x"], c["y"]) for c in CALLS) == [(3, 1), (3, 2)]
    assert sum(1 for r in result.rows if r["reused"] is not None) == 6


def test_mutating_the_merged_config_leaks_into_no_other_trial(tmp_path: Path) -> None:
    config = tmp_path / "default.json"
    config.write_text(json.dumps({"x": 0, "y": 0, "risk": {"levels": [1, 2]}}))
    seen: list[Any] = []

    def mutating(cfg: dict[str, Any]) -> float:
        seen.append(json.loads(json.dumps(cfg["risk"])))
        cfg["risk"]["levels"].append(99)
        cfg["risk"]["new"] = True
        return 1.0

    sweep(tmp_path, config=config, objective=mutating, metric="value").run()
    assert seen == [{"levels": [1, 2]}] * 6


def test_verbose_prints_one_line_per_finished_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    FAIL_POINTS.add(0)
    sweep(tmp_path, retry_failed=0, verbose=True).run()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[t] trial")]
    assert len(lines) == 6
    assert sum("FAIL: RuntimeError: x=0 failed" in line for line in lines) == 2


def test_bad_arguments_raise_one_error_naming_every_key() -> None:
    with pytest.raises(SweepFileError) as info:
        Sweep(
            direction="minimize",
            parameters={"x": {"type": "int", "low": 0, "high": 2}},
            objective=objective,
            order="random",
        )
    assert any(p.startswith("sweep.order:") for p in info.value.problems)


# -- command objectives, workers and the CLI ---------------------------------------------------------
def command_sweep(tmp_path: Path, *, extra: str = "", params: str = "", sweep_keys: str = "") -> Path:
    (tmp_path / "bt.py").write_text(SCRIPT)
    (tmp_path / "default.json").write_text(json.dumps({"x": 0, "y": 0, "fail_at": -1}))
    text = f"""
[sweep]
name = "cmd"
direction = "maximize"
metric = "score"
{sweep_keys}

[objective]
command = ["{sys.executable}", "bt.py", "{{config_file}}", "{{output_file}}", "{tmp_path / "log.txt"}"]
cwd = "."
{extra}

[config]
path = "default.json"

[parameters]
x = {{ type = "int", low = 0, high = 5 }}
{params}
"""
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def logged(tmp_path: Path) -> Counter[int]:
    log = tmp_path / "log.txt"
    return Counter(int(line) for line in log.read_text().split()) if log.exists() else Counter()


def run_cli(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastgrid", "run", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_command_failures_are_recorded_with_their_reason_and_the_sweep_goes_on(tmp_path: Path) -> None:
    path = command_sweep(
        tmp_path, extra='timeout = "20s"', params="fail_at = 3", sweep_keys="retry_failed = 0"
    )
    result = Sweep.from_file(path, directory=tmp_path, progress=False).run()
    assert logged(tmp_path) == Counter(range(6))
    failed = [r for r in result.rows if r["state"] == "FAIL"]
    assert [r["params"]["x"] for r in failed] == [3]
    assert "3" in failed[0]["reason"]
    assert result.best is not None and result.best["params"]["x"] == 5
    assert (tmp_path / "runs" / "cmd" / "trial_0").is_dir()


def test_two_workers_share_the_grid_without_running_a_point_twice(tmp_path: Path) -> None:
    path = command_sweep(tmp_path, params="y = { type = 'grid', values = [1, 2, 3] }")
    result = Sweep.from_file(path, directory=tmp_path, workers=2, progress=False).run()
    assert logged(tmp_path) == Counter({x: 3 for x in range(6)})
    assert result.counts["complete"] == 18 and result.counts["failed"] == 0
    assert len({r["key"] for r in result.rows}) == 18


TIMED = textwrap.dedent(
    """
    import json, os, sys, time
    start = time.time()
    time.sleep(0.4)
    with open(sys.argv[1], "a") as f:
        f.write(json.dumps([os.getppid(), start, time.time()]) + "\\n")
    print(json.dumps({"score": 1.0}))
    """
)


def test_command_workers_are_threads_of_this_process_running_commands_at_once(tmp_path: Path) -> None:
    (tmp_path / "timed.py").write_text(TIMED)
    log = tmp_path / "spans.jsonl"
    result = Sweep(
        direction="minimize",
        name="threads",
        parameters={"x": {"type": "int", "low": 0, "high": 5}},
        objective=[sys.executable, str(tmp_path / "timed.py"), str(log)],
        metric="score",
        directory=tmp_path,
        workers=3,
        progress=False,
    ).run()
    assert result.counts["complete"] == 6
    spans = [json.loads(line) for line in log.read_text().splitlines()]
    # Every command's parent is this process: no worker processes in between.
    assert {parent for parent, _, _ in spans} == {os.getpid()}
    # At some moment three commands ran at once.
    assert max(sum(s <= t < e for _, s, e in spans) for _, t, _ in spans) == 3


SELF_NAMED = textwrap.dedent(
    """
    import json, os, sys, time
    x, symbol, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    start = time.time()
    time.sleep(0.6 - 0.15 * x)  # later trials finish first
    stamp = time.strftime("%Y%m%d%H%M%S") + f"{time.time_ns() % 10**9:09d}"
    tmp = os.path.join("results", f".{stamp}.tmp")
    json.dump({"score": float(x)}, open(tmp, "w"))
    os.replace(tmp, os.path.join("results", f"{symbol}_1h_{stamp}.json"))
    with open(log, "a") as f:
        f.write(json.dumps([symbol, start, time.time()]) + "\\n")
    """
)


@pytest.mark.parametrize("shared_key", [True, False], ids=["same key", "key per trial"])
def test_command_workers_never_read_each_others_self_named_results(tmp_path: Path, shared_key: bool) -> None:
    (tmp_path / "self_named.py").write_text(SELF_NAMED)
    (tmp_path / "results").mkdir()
    symbol = "SYM" if shared_key else "S{params.x}"
    log = tmp_path / "spans.jsonl"
    (tmp_path / "sweep.toml").write_text(
        '[sweep]\nname = "named"\ndirection = "minimize"\nmetric = "score"\nworkers = 2\n'
        "[objective]\n"
        f'command = ["{sys.executable}", "self_named.py", "{{params.x}}", "{symbol}", "{log}"]\n'
        'cwd = "."\n'
        f'results = {{ dir = "results", key = {{ symbol = "{symbol}", timeframe = "1h" }} }}\n'
        '[parameters]\nx = { type = "int", low = 0, high = 3 }\n'
    )
    result = Sweep.from_file(tmp_path / "sweep.toml", directory=tmp_path, progress=False).run()
    assert result.counts["complete"] == 4
    # Every trial read its own file, whatever finished first.
    assert all(r["values"] == [float(r["params"]["x"])] for r in result.rows)
    spans = [json.loads(line) for line in log.read_text().splitlines()]
    overlapping = any(a[1] < b[2] and b[1] < a[2] for i, a in enumerate(spans) for b in spans[i + 1 :])
    # Trials whose files only the stamp tells apart take turns; others run at once.
    assert overlapping is not shared_key


def test_callable_workers_are_separate_processes(tmp_path: Path) -> None:
    (tmp_path / "pidmod.py").write_text(
        "import os, time\n"
        "def run(config):\n"
        "    time.sleep(0.25)\n"
        "    return {'score': float(config['x']), 'pid': os.getpid()}\n"
    )
    (tmp_path / "sweep.toml").write_text(
        '[sweep]\nname = "procs"\ndirection = "minimize"\nmetric = "score"\nworkers = 2\n'
        '[objective]\ncallable = "pidmod:run"\n'
        '[parameters]\nx = { type = "int", low = 0, high = 23 }\n'
    )
    result = Sweep.from_file(tmp_path / "sweep.toml", directory=tmp_path, progress=False).run()
    assert result.counts["complete"] == 24
    pids = {r["metrics"]["pid"] for r in result.rows}
    assert len(pids) == 2 and os.getpid() in pids


def test_cli_prints_the_best_trial_and_its_config_file(tmp_path: Path) -> None:
    path = command_sweep(tmp_path)
    out = run_cli(tmp_path, str(path), "--max-trials", "3")
    assert out.returncode == 0, out.stderr
    assert "best trial 2 of sweep cmd: 4" in out.stdout
    config_line = next(line for line in out.stdout.splitlines() if "config:" in line)
    best = Path(config_line.split("config:")[1].strip())
    assert json.loads(best.read_text()) == {"x": 2, "y": 0, "fail_at": -1}
    again = run_cli(tmp_path, str(path))
    assert again.returncode == 0 and logged(tmp_path) == Counter(range(6))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[sweep]\nworkerz = 2\n", "sweep.workerz: unknown key (did you mean 'workers'?)"),
        ("[sweep\n", "invalid TOML"),
        (
            '[sweep]\ndirection = "minimize"\n[objective]\ncallable = "m:f"\n'
            '[parameters]\nx = { type = "float", low = 0, high = 1 }\n',
            "parameters.x",
        ),
        (
            '[sweep]\ndirection = "minimize"\n[objective]\ncallable = "m:f"\n'
            '[constraints]\nrequire = ["trades >="]\n[parameters]\nx = 1\n',
            "constraints.require[0]",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_a_message_and_no_traceback(
    tmp_path: Path, content: str, needle: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    out = run_cli(tmp_path, str(path))
    assert out.returncode == 2
    assert needle in out.stderr and str(path) in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_refuses_a_changed_sweep_with_exit_2(tmp_path: Path) -> None:
    path = command_sweep(tmp_path)
    assert run_cli(tmp_path, str(path), "--max-trials", "1").returncode == 0
    (tmp_path / "default.json").write_text(json.dumps({"x": 0, "y": 0, "fail_at": -2}))
    out = run_cli(tmp_path, str(path))
    assert out.returncode == 2 and "--fresh" in out.stderr and "Traceback" not in out.stderr
    assert run_cli(tmp_path, str(path), "--fresh").returncode == 0


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_ctrl_c_records_the_running_trial_as_interrupted_and_a_rerun_resumes(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # SIGTERM (docker stop, systemd, schedulers) and SIGHUP (a dropped ssh session) act as Ctrl-C
    # and exit with 128 + the signal (issue 12, item 1).
    path = command_sweep(tmp_path)
    (tmp_path / "slow").write_text("")
    # fastgrid rightly keeps a hang-up ignored when it was started so (nohup), and so was this
    # suite if it runs under nohup: the run gets SIGHUP's default, as in an ssh session.
    code = (
        "import signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
        f"sys.argv = ['fastgrid', 'run', {str(path)!r}, '--no-progress']; "
        "from fastgrid.cli import main; main()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pid_file = tmp_path / "runs" / "cmd" / "trial_0" / "pid"
    _wait_for(pid_file)
    time.sleep(0.2)
    child = int(pid_file.read_text())
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the objective's process was left running"
    study = load(tmp_path, "cmd")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["reason"] == "interrupted"
    (tmp_path / "slow").unlink()
    out = run_cli(tmp_path, str(path))
    assert out.returncode == 0, out.stderr
    assert sorted(t.params["x"] for t in load(tmp_path, "cmd").trials if t.state.name == "COMPLETE") == list(
        range(6)
    )


def test_a_killed_run_leaves_a_stale_trial_that_the_next_run_retries(tmp_path: Path) -> None:
    path = command_sweep(tmp_path)
    (tmp_path / "slow").write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid_file = tmp_path / "runs" / "cmd" / "trial_0" / "pid"
    _wait_for(pid_file)
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert [t.state.name for t in load(tmp_path, "cmd").trials] == ["RUNNING"]
    (tmp_path / "slow").unlink()
    out = run_cli(tmp_path, str(path))
    assert out.returncode == 0, out.stderr
    trials = load(tmp_path, "cmd").trials
    assert trials[0].state.name == "FAIL" and trials[0].user_attrs["reason"].startswith("stale")
    assert logged(tmp_path) == Counter({0: 2, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1})


def test_stale_running_trials_are_failed_and_retried_on_resume(tmp_path: Path) -> None:
    s = sweep(tmp_path, max_trials=2)
    s.run()
    study = load(tmp_path)
    trial = study.ask()  # a trial left RUNNING, as by a killed process
    assert trial.number == 2
    CALLS.clear()
    result = sweep(tmp_path).run()
    rows = {r["number"]: r for r in result.rows}
    assert rows[2]["state"] == "FAIL" and rows[2]["reason"].startswith("stale")
    assert sorted((c["x"], c["y"]) for c in CALLS) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert result.counts["complete"] == 6


def test_two_workers_interrupted_by_sigint_record_both_trials_and_kill_their_commands(tmp_path: Path) -> None:
    path = command_sweep(tmp_path)
    (tmp_path / "slow").write_text("")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--workers", "2", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_files = [tmp_path / "runs" / "cmd" / f"trial_{n}" / "pid" for n in (0, 1)]
    for pid_file in pid_files:
        _wait_for(pid_file)
    time.sleep(0.3)
    children = [int(p.read_text()) for p in pid_files]
    proc.send_signal(signal.SIGINT)  # to the parent only: it passes the interrupt on to its workers
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(c) for c in children)
    trials = load(tmp_path, "cmd").trials
    assert sorted(t.user_attrs.get("reason") for t in trials) == ["interrupted", "interrupted"]


def test_tpe_gets_the_result_constraints_as_its_constraints_func(tmp_path: Path) -> None:
    result = sweep(
        tmp_path,
        sampler={"name": "tpe", "seed": 0, "n_startup_trials": 3},
        require=["trades <= 1"],
        max_trials=8,
    ).run()
    study = result.study
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete
    for t in complete:
        # Optuna >= 5 keeps one "constraints:<name>" system attr per constraint, older a list.
        stored = {k: v for k, v in t.system_attrs.items() if k.startswith("constraints")}
        assert list(stored.values()) in ([float(t.params["x"] > 1)], [[float(t.params["x"] > 1)]])
    assert result.best is not None and result.best["params"]["x"] <= 1


def test_timeout_and_end_at_stop_starting_trials(tmp_path: Path) -> None:
    def slow(config: dict[str, Any]) -> float:
        time.sleep(0.5)
        return 1.0

    params = {"x": {"type": "int", "low": 0, "high": 99}}
    timed = sweep(
        tmp_path, name="timed", parameters=params, objective=slow, metric="value", timeout="5s"
    ).run()
    assert 1 <= timed.ran < 100
    past = sweep(
        tmp_path,
        name="past",
        parameters=params,
        objective=slow,
        metric="value",
        end_at="2000-01-01T00:00:00Z",
    )
    assert past.run().ran == 0


def test_progress_bar_on_a_terminal_shows_done_total_best_and_failures() -> None:
    import io

    from fastgrid.runner import Reporter, TrialEvent

    stream = io.StringIO()
    with Reporter(
        name="bar", total=4, done=1, directions=["maximize"], mode="bar", stream=stream
    ) as reporter:
        reporter.update(TrialEvent(1, "COMPLETE", [2.5], None, 0.1, False, True))
        reporter.update(TrialEvent(2, "FAIL", None, "timeout", 0.1, False, False))
        reporter.update(TrialEvent(3, "COMPLETE", [1.0], None, 0.1, False, True))
    text = stream.getvalue()
    assert "3/4" in text and "best 2.5" in text and "failed 1" in text


def test_the_shipped_example_runs_with_two_workers_and_resumes_to_nothing(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "sma" / "sma_sweep.toml"
    out = run_cli(tmp_path, str(example), "--workers", "2")
    assert out.returncode == 0, out.stderr
    study = load(tmp_path, "sma")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 81 == len({t.user_attrs["key"] for t in complete})
    assert all(t.params["signal.fast"] < t.params["signal.slow"] for t in complete)
    best = max((t for t in complete if t.user_attrs["feasible"]), key=lambda t: t.values[0])
    assert f"best trial {best.number} of sweep sma" in out.stdout
    config = json.loads((tmp_path / "runs" / "sma" / "best_config.json").read_text())
    assert config["signal"] == {"fast": best.params["signal.fast"], "slow": best.params["signal.slow"]}
    assert config["costs"] == {"per_trade": 0.0005}
    again = run_cli(tmp_path, str(example))
    assert again.returncode == 0 and "ran 0 trial(s)" in again.stderr


def test_a_search_without_any_budget_and_an_unpicklable_callable_for_workers_are_refused() -> None:
    lock = threading.Lock()

    def holds_a_lock(cfg: dict[str, Any]) -> float:
        with lock:
            return 1.0

    with pytest.raises(SweepFileError) as info:
        Sweep(direction="minimize", parameters=xy(), objective=holds_a_lock, sampler="tpe", workers=2)
    found = "\n".join(info.value.problems)
    assert "set sweep.max_trials, sweep.timeout or sweep.end_at" in found
    assert "objective: with workers > 1 the callable is sent to worker processes" in found
    assert "cannot pickle '_thread.lock' object" in found


def test_a_union_of_trees_is_refused_in_search_mode_naming_the_sampler() -> None:
    trees = [{"x": {"type": "int", "low": 0, "high": 3}}, {"y": {"type": "int", "low": 0, "high": 3}}]
    with pytest.raises(SweepFileError) as info:
        Sweep(direction="minimize", parameters=trees, objective=lambda cfg: 1.0, sampler="tpe", max_trials=3)
    assert any(
        p.startswith("parameters:") and "needs sampler = 'grid'" in p and "'tpe'" in p
        for p in info.value.problems
    )


def test_a_parameter_the_config_lacks_is_refused_before_any_trial(tmp_path: Path) -> None:
    config = tmp_path / "default.json"
    config.write_text(json.dumps({"x": 0}))
    with pytest.raises(SweepFileError) as info:
        sweep(tmp_path, config=config).run()
    assert info.value.problems[0].startswith("config:") and "y" in info.value.problems[0]
    assert CALLS == []


def test_a_second_run_leaves_the_running_trials_of_a_live_run_alone(tmp_path: Path) -> None:
    path = command_sweep(tmp_path)
    (tmp_path / "slow").write_text("")
    first = subprocess.Popen(
        [sys.executable, "-m", "fastgrid", "run", str(path), "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(tmp_path / "runs" / "cmd" / "trial_0" / "pid")
        (tmp_path / "slow").unlink()
        out = run_cli(tmp_path, str(path))
        assert out.returncode == 0, out.stderr
        trials = load(tmp_path, "cmd").trials
        # trial 0 belongs to the live first run: still running, not failed as stale.
        assert trials[0].state.name == "RUNNING"
        assert sorted(t.params["x"] for t in trials if t.state.name == "COMPLETE") == [1, 2, 3, 4, 5]
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert load(tmp_path, "cmd").trials[0].user_attrs["reason"] == "interrupted"


def test_cli_storage_flag_puts_the_study_where_it_says(tmp_path: Path) -> None:
    path = command_sweep(tmp_path)
    out = run_cli(tmp_path, str(path), "--storage", "elsewhere.log", "--max-trials", "2")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "elsewhere.log").exists() and not (tmp_path / "fastgrid.db").exists()
    study = optuna.load_study(study_name="cmd", storage=open_storage("elsewhere.log", directory=tmp_path))
    assert [t.params["x"] for t in study.trials] == [0, 1]


def test_a_shuffled_sweep_runs_every_point_once_in_a_seeded_order_and_resumes_in_it(tmp_path: Path) -> None:
    params = {"x": {"type": "int", "low": 0, "high": 9}, "y": {"type": "grid", "values": [1, 2]}}
    sweep(tmp_path, parameters=params, order="shuffled", seed=5, max_trials=7).run()
    sweep(tmp_path, parameters=params, order="shuffled", seed=5).run()
    order = [(c["x"], c["y"]) for c in CALLS]
    assert sorted(order) == [(x, y) for x in range(10) for y in (1, 2)]
    assert order != sorted(order)
    with pytest.raises(SweepChangedError, match="shuffle seed"):
        sweep(tmp_path, parameters=params, order="shuffled", seed=6).run()
    other = tmp_path / "other"
    other.mkdir()
    CALLS.clear()
    sweep(other, parameters=params, order="shuffled", seed=5).run()
    assert [(c["x"], c["y"]) for c in CALLS] == order


def test_a_union_of_trees_runs_each_point_and_records_params_of_either_shape(tmp_path: Path) -> None:
    def score(config: dict[str, Any]) -> float:
        CALLS.append(json.loads(json.dumps(config)))
        return float(config.get("x", 0) + config.get("z", 0))

    trees = [
        {"x": {"type": "int", "low": 0, "high": 2}},
        {"x": {"type": "grid", "values": [10]}, "z": {"type": "grid", "values": [1, 2]}},
    ]
    result = sweep(tmp_path, parameters=trees, objective=score, metric="value").run()
    assert CALLS == [{"x": 0}, {"x": 1}, {"x": 2}, {"x": 10, "z": 1}, {"x": 10, "z": 2}]
    assert [r["params"] for r in result.rows] == CALLS
    assert result.best is not None and result.best["params"] == {"x": 10, "z": 2}  # maximized


def test_parameters_of_one_value_are_recorded_once_not_on_every_trial(tmp_path: Path) -> None:
    # Issue 12, item 8: a 1-point grid of 121,692 constants took minutes, each an Optuna param.
    constants = {f"c{i}": i for i in range(50)}
    parameters = {
        "const": constants,
        "one": {"type": "grid", "values": [[1, 2]]},
        "step": {"type": "int", "low": 3, "high": 3},
        "x": {"type": "int", "low": 0, "high": 1},
    }
    sweep = Sweep(
        parameters=parameters,
        objective=lambda c: c["x"],
        direction="minimize",
        directory=tmp_path,
        progress=False,
    )
    result = sweep.run()
    assert [t.params for t in result.study.trials] == [{"x": 0}, {"x": 1}]
    expected = {**{f"const.c{i}": i for i in range(50)}, "one": [1, 2], "step": 3}
    assert [r["params"] for r in result.rows] == [{**expected, "x": 0}, {**expected, "x": 1}]
    assert result.best_config == {"const": constants, "one": [1, 2], "step": 3, "x": 0}


@pytest.mark.parametrize("low", [1_700_000_000_000_000_001, 2**63 - 4, -(2**63)])
def test_integers_past_two_to_the_53_are_recorded_exactly(tmp_path: Path, low: int) -> None:
    # Issue 12, item 16: Optuna keeps int params as floats; 1700000000000000001..004 all read back
    # as 1700000000000000000, and near 2**63 outside int64 and the grid.
    values = list(range(low, low + 4))
    seen: list[int] = []

    def objective(config: dict[str, Any]) -> float:
        seen.append(config["n"])
        return float(values.index(config["n"]))

    parameters = {"n": {"type": "int", "low": low, "high": low + 3}, "k": {"type": "grid", "values": [1]}}
    sweep = Sweep(
        parameters=parameters, objective=objective, direction="minimize", directory=tmp_path, progress=False
    )
    result = sweep.run()
    assert seen == values
    assert [r["params"]["n"] for r in result.rows] == values
    assert result.best is not None and result.best["params"] == {"n": values[0], "k": 1}
    assert result.best_config == {"n": values[0], "k": 1}
    assert json.loads(Path(result.best_config_path or "").read_text())["n"] == values[0]
    # A resume reuses them by their exact keys.
    again = Sweep(
        parameters=parameters, objective=objective, direction="minimize", directory=tmp_path, progress=False
    ).run()
    assert again.ran == 0 and len(seen) == 4


def test_a_search_over_integers_past_two_to_the_53_is_refused() -> None:
    with pytest.raises(SweepFileError, match=r"parameters.n: integers beyond ±2\*\*53"):
        Sweep(
            parameters={"n": {"type": "int", "low": 0, "high": 2**60}},
            objective=lambda c: 0.0,
            direction="minimize",
            sampler="random",
            max_trials=3,
        )
