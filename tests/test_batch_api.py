"""Batch sweeps from ``Sweep(...)`` keywords (issue 13): the same sweep as its sweep file gives the
same points, and every combination a batch sweep refuses is refused from both, by one rule, in one
line naming the key (the file's ``sweep.pruner``, the keyword's ``pruner``) and the fix."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastgrid import Sweep
from fastgrid.exceptions import SweepFileError
from fastgrid.runner import BatchSweepResult
from test_batch_sweep import PARAMS, frame, sweep_file


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))  # Sweep(batch="batchobj:score") imports from the folder
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("batchobj", None)


def keywords(folder: Path, **extra: Any) -> dict[str, Any]:
    """The keywords of ``sweep_file(folder)``'s sweep."""
    return {
        "parameters": PARAMS,
        "mode": "batch",
        "chunk": 40,
        "direction": "maximize",
        "metric": "score",
        "where": ["a < b"],
        "top_k": 10,
        "config": folder / "config.json",
        "require": ["trades >= 8"],
        "directory": folder,
        "progress": False,
        **extra,
    }


def _comparable(r: BatchSweepResult) -> tuple[Any, ...]:
    df = r.to_pandas().drop(columns=["duration"])
    best = {k: v for k, v in (r.best or {}).items() if k != "duration"}
    return (
        df.astype(object).where(df.notna(), None).to_dict("list"),  # NaN == NaN fails
        best,
        r.best_config,
        r.failures(),
        {k: v for k, v in r.counts.items() if k != "chunks_done"},
        [row["number"] for row in r.rows],
    )


def test_sweep_keywords_and_the_sweep_file_give_the_same_batch_sweep(folder: Path) -> None:
    path = sweep_file(folder)
    from_file = Sweep.from_file(path, directory=folder, progress=False).run()
    by_name = Sweep(name="k1", batch="batchobj:score", **keywords(folder)).run()
    import batchobj  # type: ignore[import-not-found]

    by_callable = Sweep(name="k2", batch=batchobj.score, **keywords(folder)).run()
    assert isinstance(by_name, BatchSweepResult) and isinstance(by_callable, BatchSweepResult)
    assert from_file.counts["done"] == 324 and from_file.failures() == {"ValueError: cannot trade 3/7": 2}
    want = _comparable(from_file)
    assert _comparable(by_name) == want
    assert _comparable(by_callable) == want
    # Each sweep is its own study in the one store: the file's rows are not touched by the others.
    df = frame(folder, "b").drop(columns=["duration"])
    assert df.astype(object).where(df.notna(), None).to_dict("list") == want[0]


def test_a_per_point_callable_in_batch_mode_scores_every_point_as_its_vectorized_twin(folder: Path) -> None:
    sweep_file(folder)
    import batchobj

    def per_point(config: dict[str, Any]) -> dict[str, float]:
        cols = {k: np.array([config[k]]) for k in ("a", "b", "mode")}
        out = batchobj.score(cols, config)
        return {k: float(v[0]) for k, v in out.items()}

    vectorized = Sweep(name="v", batch=batchobj.score, **keywords(folder)).run()
    pointwise = Sweep(name="p", objective=per_point, **keywords(folder)).run()
    assert isinstance(pointwise, BatchSweepResult)
    a, b = vectorized.to_pandas(), pointwise.to_pandas()
    assert a["slot"].tolist() == b["slot"].tolist()
    ok = ~a["failed"]
    assert np.allclose(a["score"][ok], b["score"][ok]) and (a["feasible"] == b["feasible"]).all()
    assert pointwise.best is not None and vectorized.best is not None
    assert pointwise.best["number"] == vectorized.best["number"]
    assert pointwise.best["params"] == vectorized.best["params"]
    assert pointwise.failures() == {"ValueError: cannot trade 3/7": 2}


# (sweep-file text added to a valid batch sweep file, keywords added to Sweep(...), the file's key,
#  the keyword, the rule's text after the key)
REFUSED = [
    (
        'sampler = "tpe"\nmax_trials = 5',
        {"sampler": "tpe", "max_trials": 5},
        "sweep.sampler",
        "sampler",
        "a batch sweep evaluates a grid chunk by chunk; a 'tpe' search proposes one point at a time: "
        'use sampler = "grid" or mode = "trial"',
    ),
    (
        'pruner = "median"',
        {"pruner": "median"},
        "sweep.pruner",
        "pruner",
        "a batch sweep scores whole chunks and reports no intermediate values, so there is nothing "
        'to prune: drop the pruner or use mode = "trial"',
    ),
    (
        "[objective]\nretries = 2",
        {"retries": 2},
        "objective.retries",
        "retries",
        "applies to per-trial objectives; a batch sweep retries failed points on the next run "
        '(retry_failed): drop it or use mode = "trial"',
    ),
]


def _with(path: Path, addition: str) -> None:
    """Adds ``addition`` to the [sweep] table (or, when it starts with a table, into that table)."""
    text = path.read_text()
    if addition.startswith("["):
        table, _, body = addition.partition("\n")
        if table in text:
            text = text.replace(table + "\n", f"{table}\n{body}\n", 1)
        else:
            text += f"\n{addition}\n"
    else:
        text = text.replace("[sweep]\n", f"[sweep]\n{addition}\n", 1)
    path.write_text(text)


@pytest.mark.parametrize(("text", "extra", "key", "keyword", "rule"), REFUSED, ids=[r[3] for r in REFUSED])
def test_each_refused_combination_is_one_line_naming_the_key_from_the_file_and_the_keyword(
    folder: Path, text: str, extra: dict[str, Any], key: str, keyword: str, rule: str
) -> None:
    path = sweep_file(folder)
    _with(path, text)
    with pytest.raises(SweepFileError) as in_file:
        Sweep.from_file(path, directory=folder)
    with pytest.raises(SweepFileError) as by_keyword:
        Sweep(batch="batchobj:score", **{**keywords(folder), **extra})
    assert in_file.value.problems == [f"{key}: {rule}"]
    assert by_keyword.value.problems == [f"{keyword}: {rule}"]
    assert str(by_keyword.value).count("\n") == 1  # "Sweep(...): 1 problem:" and the line


def test_an_objective_timeout_limits_a_batch_objective_and_is_refused_for_a_per_point_callable(
    folder: Path,
) -> None:
    path = sweep_file(folder)
    _with(path, "[objective]\ntimeout = 30")
    Sweep.from_file(path, directory=folder)  # a batch objective's calls are timed
    Sweep(batch="batchobj:score", objective_timeout=30, **keywords(folder))
    path.write_text(path.read_text().replace('batch = "batchobj:score"', 'callable = "batchobj:score"'))
    rule = (
        "limits each call of a batch objective; a per-point callable in a batch sweep has none: "
        'drop it, give a batch objective, or use mode = "trial"'
    )
    with pytest.raises(SweepFileError) as in_file:
        Sweep.from_file(path, directory=folder)
    with pytest.raises(SweepFileError) as by_keyword:
        Sweep(objective="batchobj:score", objective_timeout=30, **keywords(folder))
    assert in_file.value.problems == [f"objective.timeout: {rule}"]
    assert by_keyword.value.problems == [f"objective_timeout: {rule}"]


def test_a_command_objective_in_batch_mode_is_refused_from_the_file_and_the_keyword(folder: Path) -> None:
    path = sweep_file(folder)
    path.write_text(path.read_text().replace('batch = "batchobj:score"', 'command = ["python", "bt.py"]'))
    rule = (
        "a command runs one process per point, which cannot be batched; give a batch objective "
        '(fn(columns, config)) or a callable, or use mode = "trial"'
    )
    with pytest.raises(SweepFileError) as in_file:
        Sweep.from_file(path, directory=folder)
    with pytest.raises(SweepFileError) as by_keyword:
        Sweep(objective=["python", "bt.py"], **keywords(folder))
    assert in_file.value.problems == [f"objective.command: {rule}"]
    assert by_keyword.value.problems == [f"objective: {rule}"]


def test_several_refused_keys_are_listed_together(folder: Path) -> None:
    with pytest.raises(SweepFileError) as info:
        extra = {"pruner": "median", "retries": 1, "env": {"A": "1"}}
        Sweep(batch="batchobj:score", **keywords(folder, **extra))
    assert [p.split(":")[0] for p in info.value.problems] == ["pruner", "retries", "env"]


@pytest.mark.parametrize(
    ("extra", "keyword"),
    [({"batch": "batchobj:score"}, "batch"), ({"chunk": 10}, "chunk"), ({"top_k": 5}, "top_k")],
)
def test_batch_keywords_outside_a_batch_sweep_are_refused(
    folder: Path, extra: dict[str, Any], keyword: str
) -> None:
    kw = {k: v for k, v in keywords(folder).items() if k not in ("mode", "chunk", "top_k")}
    objective = {} if "batch" in extra else {"objective": "batchobj:score"}
    with pytest.raises(SweepFileError) as info:
        Sweep(**kw, **objective, **extra)
    rule = 'applies to batch sweeps only: add mode = "batch" (or drop it)'
    assert info.value.problems == [f"{keyword}: {rule}"]


def test_batch_mode_needs_exactly_one_objective_keyword(folder: Path) -> None:
    for extra in ({}, {"batch": "batchobj:score", "objective": "batchobj:score"}):
        with pytest.raises(SweepFileError) as info:
            Sweep(**keywords(folder), **extra)
        assert info.value.problems == [
            'objective: set exactly one of objective= (a callable, "module:function" or a command argv '
            'list) or, in a batch sweep, batch= (fn(columns, config) or "module:function")'
        ]


def test_end_at_ends_a_batch_run_from_keywords(folder: Path) -> None:
    sweep_file(folder)
    r = Sweep(batch="batchobj:score", end_at="2000-01-01T00:00:00", **keywords(folder)).run()
    assert r.counts["done"] == 0 and r.best is None
    later = Sweep(batch="batchobj:score", end_at="2999-01-01T00:00:00", **keywords(folder)).run()
    assert later.counts["done"] == 324


def test_a_config_given_as_a_mapping_reaches_a_batch_sweep_as_its_file_does(folder: Path) -> None:
    sweep_file(folder)
    config = json.loads((folder / "config.json").read_text())
    from_file = Sweep(name="k1", batch="batchobj:score", **keywords(folder)).run()
    # The objective adds config["bonus"] to every score: a batch sweep that dropped the mapping
    # (it did) scored every point 1 lower and wrote a best config without the defaults.
    from_mapping = Sweep(name="k2", batch="batchobj:score", **keywords(folder, config=config)).run()
    assert _comparable(from_mapping) == _comparable(from_file)
    assert from_mapping.best_config is not None and from_mapping.best_config["bonus"] == 1


def _counting(calls: list[int]) -> Any:
    def score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        calls.append(len(cols["a"]))
        return {"score": cols["a"] * 1.0, "trades": cols["b"] * 1}

    return score


def test_a_parameter_the_config_lacks_stops_a_batch_sweep_before_its_first_chunk(folder: Path) -> None:
    sweep_file(folder)
    (folder / "config.json").write_text(json.dumps({"a": 0, "mode": "x"}))  # no "b"
    calls: list[int] = []
    # It ran the whole grid, then failed writing the best config with a ConfigError traceback.
    with pytest.raises(SweepFileError, match=r'config: b: unknown key "b" at the top level'):
        Sweep(name="k", batch=_counting(calls), **keywords(folder)).run()
    assert calls == []


def test_a_bare_list_replacing_a_config_number_is_refused_in_batch_mode(folder: Path) -> None:
    sweep_file(folder)
    calls: list[int] = []
    params = {**PARAMS, "bonus": [1, 2]}
    with pytest.raises(SweepFileError, match=r"parameters\.bonus: a bare list is ONE fixed value"):
        Sweep(name="k", batch=_counting(calls), **keywords(folder, parameters=params)).run()
    assert calls == []


def test_a_batch_sweep_keeps_the_config_it_started_with_when_the_file_is_edited(folder: Path) -> None:
    sweep_file(folder)
    config_file = folder / "config.json"
    seen: list[int] = []

    def score(cols: dict[str, Any], config: Any) -> dict[str, Any]:
        seen.append(config["bonus"])
        edited = json.loads(config_file.read_text())
        edited["bonus"] = 100
        config_file.write_text(json.dumps(edited))  # an edit while the sweep runs
        return {"score": cols["a"] * 1.0 + config["bonus"], "trades": cols["b"] * 1}

    result = Sweep(name="k", batch=score, **keywords(folder, chunk=20)).run()
    assert len(seen) > 1 and set(seen) == {1}
    assert result.best_config is not None and result.best_config["bonus"] == 1
    assert json.loads(Path(result.best_config_path).read_text())["bonus"] == 1
