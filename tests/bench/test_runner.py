"""The runner: resume after a kill without recomputing finished cells, identical numbers, tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import pytest
import yaml
from bench_helpers import metric_view, record_line, tiny_suite

from amun_plugin.bench import cells as cells_module
from amun_plugin.bench import workspace as workspace_module
from amun_plugin.bench.runner import run_suite
from amun_plugin.bench.suite_tables import DELTA_COLUMN, format_ci, table_rows
from amun_plugin.errors import InvalidInputError
from amun_plugin.executors import LocalExecutor, ProcessExecutor, Resources


class Killed(BaseException):
    """Stands in for SIGKILL / Ctrl-C in the middle of a run."""


class KillingExecutor(LocalExecutor):
    """Runs ``budget`` jobs in total (over all stages), then dies before the next one."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def run(self, jobs: Sequence[Callable[[], Any]], resources: Resources = Resources(),
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        results = []
        for index, job in enumerate(jobs):
            if self.budget == 0:
                raise Killed()
            self.budget -= 1
            results.append(job())
            if on_result is not None:
                on_result(index, results[-1])
        return results


def read(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"train": 0, "unlearn": 0}
    train, unlearn = workspace_module.train_original, cells_module.unlearn

    def counting_train(*args: Any, **kwargs: Any) -> Any:
        counts["train"] += 1
        return train(*args, **kwargs)

    def counting_unlearn(*args: Any, **kwargs: Any) -> Any:
        counts["unlearn"] += 1
        return unlearn(*args, **kwargs)

    monkeypatch.setattr(workspace_module, "train_original", counting_train)
    monkeypatch.setattr(cells_module, "unlearn", counting_unlearn)
    return counts


def test_a_killed_run_resumes_with_identical_numbers(tmp_path: Path, counters: dict[str, int]) -> None:
    config = tiny_suite(tuning={"enabled": True}, methods=[
        {"name": "ft", "label": "FT", "options": {"epochs": 1}, "grid": {"lr": [0.01, 0.05]}},
        {"name": "amun", "label": "AMUN", "adversarial": "own", "options": {"epochs": 1, "search": {
            "max_doublings": 6, "refine_steps": 2}}}])
    clean = run_suite(config, tmp_path / "clean", cache_dir=tmp_path / "cache_clean", progress=False, echo=print)
    clean_counts = dict(counters)
    # 1 original + 2 retrains + 1 tuning retrain; 2 tuning points + 2 splits x 2 methods.
    assert clean_counts == {"train": 4, "unlearn": 6}

    counters.update(train=0, unlearn=0)
    # jobs: 4 models, 3 adversarial sets, 2 tuning cells, then die after 2 of the 6 main cells
    with pytest.raises(Killed):
        run_suite(config, tmp_path / "run", executor=KillingExecutor(11), cache_dir=tmp_path / "cache",
                  progress=False, echo=print)
    finished = read(tmp_path / "run")
    assert len(finished) == 2
    before = dict(counters)
    run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    resumed = {k: counters[k] - before[k] for k in counters}
    unlearn_done = sum(r["kind"] == "unlearn" for r in finished)
    assert resumed == {"train": 0, "unlearn": 4 - unlearn_done}  # nothing finished is recomputed
    assert metric_view(read(tmp_path / "run")) == metric_view(read(clean))
    tuning = json.loads((tmp_path / "run" / "tuning.json").read_text())
    assert tuning == json.loads((clean / "tuning.json").read_text()) and tuning[0]["method"] == "FT"


def test_a_finished_run_recomputes_nothing(tmp_path: Path, counters: dict[str, int]) -> None:
    config = tiny_suite(grid={"forget_seeds": [0]})
    folder = run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    first = dict(counters)
    assert first == {"train": 2, "unlearn": 2}  # the original and the retrained model, once each
    run_suite(config, folder, cache_dir=tmp_path / "cache", progress=False, echo=print)
    assert counters == first
    table = (folder / "table.md").read_text()
    assert "| Retrain |" in table and "| AMUN |" in table and (folder / "env.json").exists()
    assert json.loads((folder / "env.json").read_text())["versions"]["torch"]


def test_another_config_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    config = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "ft", "options": {"epochs": 1}}])
    run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    changed = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "ft", "options": {"epochs": 2}}])
    with pytest.raises(InvalidInputError, match="different suite configuration"):
        run_suite(changed, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)


def test_method_subsets_share_a_folder_and_the_full_run_recomputes_nothing(tmp_path: Path,
                                                                            counters: dict[str, int]) -> None:
    ft, rl = {"name": "ft", "options": {"epochs": 1}}, {"name": "rl", "options": {"epochs": 1}}
    full = tiny_suite(grid={"forget_seeds": [0]}, methods=[ft, rl])
    run_suite(full.with_methods(["ft"]), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    run_suite(full.with_methods(["rl"]), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    assert {m["name"] for m in yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["methods"]} == {"ft",
                                                                                                             "rl"}
    table = (tmp_path / "run" / "table.md").read_text()
    assert "| ft |" in table and "| rl |" in table  # the subset's table also shows the earlier subset's rows
    done = dict(counters)
    run_suite(full, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    assert counters == done  # every cell of the full suite was already there
    assert {r["method"] for r in read(tmp_path / "run") if r["kind"] == "unlearn"} >= {"ft", "rl"}
    changed = tiny_suite(grid={"forget_seeds": [0]}, methods=[{"name": "rl", "options": {"epochs": 2}}])
    with pytest.raises(InvalidInputError, match="method.s. rl configured differently"):
        run_suite(changed, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)


def test_a_folder_takes_more_forget_fractions_later(tmp_path: Path, counters: dict[str, int]) -> None:
    config = tiny_suite(grid={"forget_seeds": [0], "fractions": [0.1]},
                        methods=[{"name": "ft", "options": {"epochs": 1}}])
    run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    first = counters["unlearn"]
    wider = config.with_fractions([0.1, 0.2])
    run_suite(wider, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)
    assert counters["unlearn"] == 2 * first  # only the new fraction's cells ran
    assert {r["fraction"] for r in read(tmp_path / "run")} == {0.1, 0.2}
    run_suite(config, tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, echo=print)  # 10% only
    table = (tmp_path / "run" / "table.md").read_text()
    assert "forget 10%" in table and "forget 20%" in table  # the 20% rows stay in the table


def _record(method: str, seed: int, ua: float, gap: float) -> dict[str, Any]:
    return record_line("retrain" if method == "Retrain" else "unlearn", method, fraction=0.1, forget_seed=seed,
                       seconds=1.0, gaps={"conf": gap}, metrics={"accuracy.UA": ua, "accuracy.RA": 100.0,
                                                                 "accuracy.TA": 90.0, "confidence_mia.FT_AUC": 50.0})


def test_tables_show_mean_and_95_ci_and_bold_only_a_significantly_best_avg_gap() -> None:
    assert format_ci([1.0, 3.0]) == "2.00 ± 12.71"  # t_{0.975, 1} = 12.706, s / sqrt(n) = 1
    assert format_ci([2.5]) == "2.50 ± n/a"
    assert format_ci([1.0, 1.0], bold=True) == "**1.00 ± 0.00**"
    records = [_record("Retrain", s, 90.0, 0.0) for s in (0, 1)]
    records += [_record("FT", s, 95.0 + s, 3.0 + s) for s in (0, 1)]
    records += [_record("AMUN", s, 91.0, 1.0 + s) for s in (0, 1)]
    rows = {row["method"]: row for row in table_rows(tiny_suite(), records)}
    assert list(rows) == ["Retrain", "FT", "AMUN"]
    assert rows["FT"]["UA"] == "95.50 ± 6.35" and rows["FT"]["Avg Gap"] == "3.50 ± 6.35"
    # FT - AMUN is +2 on both forget sets: the paired interval is 2 ± 0, it excludes 0
    assert rows["FT"][DELTA_COLUMN] == "+2.00 ± 0.00 *" and rows["AMUN"][DELTA_COLUMN] == "—"
    assert rows["AMUN"]["Avg Gap"] == "**1.50 ± 6.35**"
    assert rows["Retrain"]["Avg Gap"] == "0.00 ± 0.00" and rows["AMUN"]["runs"] == 2
    # a lower mean whose paired difference includes 0 is not bold
    records[2:4] = [_record("FT", 0, 95.0, 1.0), _record("FT", 1, 95.0, 2.5)]
    rows = {row["method"]: row for row in table_rows(tiny_suite(), records)}
    assert "**" not in rows["AMUN"]["Avg Gap"] + rows["FT"]["Avg Gap"]
    assert rows["FT"][DELTA_COLUMN] == "+0.25 ± 3.18"


def test_a_suite_of_amun_variants_pairs_every_row_with_its_first_variant() -> None:
    """weak_attack has no row called plain AMUN: the differences are taken against its first row."""
    ffgsm = {"name": "amun", "label": "AMUN (FFGSM)", "options": {"attack": "torchattacks_ffgsm"}}
    config = tiny_suite(methods=[{"name": "amun", "label": "AMUN (default search)"}, ffgsm])
    records = [_record("Retrain", s, 90.0, 0.0) for s in (0, 1)]
    records += [_record("AMUN (default search)", s, 91.0, 1.0 + s) for s in (0, 1)]
    records += [_record("AMUN (FFGSM)", s, 92.0, 2.0 + s) for s in (0, 1)]
    rows = {row["method"]: row for row in table_rows(config, records)}
    assert rows["AMUN (FFGSM)"][DELTA_COLUMN] == "+1.00 ± 0.00 *"
    assert rows["AMUN (default search)"][DELTA_COLUMN] == "—"


def test_tuning_modes_are_compared_pairwise_per_method() -> None:
    from amun_plugin.bench.suite_tables import mode_rows, suite_tables

    records = [_record("Retrain", s, 90.0, 0.0) for s in (0, 1, 2)]
    for seed, (oracle, free) in enumerate([(1.0, 1.5), (2.0, 2.4), (4.0, 4.6)]):
        records += [_record("AMUN", seed, 91.0, oracle), {**_record("AMUN", seed, 92.0, free),
                                                          "tuning_mode": "retrain_free"}]
    records.append(_record("FT", 0, 95.0, 3.0))  # oracle only: no comparison row
    rows = mode_rows(tiny_suite(), records)
    assert [r["method"] for r in rows] == ["AMUN"]
    # retrain-free - oracle = 0.5, 0.4, 0.6 on the same forget sets: mean 0.5, s = 0.1, t_2 = 4.303
    assert rows[0]["Δ retrain-free − oracle"] == "+0.50 ± 0.25 *"
    assert rows[0]["oracle"] == format_ci([1.0, 2.0, 4.0]) and rows[0]["runs"] == 3
    # s = 1.528 (oracle) and 1.595 (retrain-free): t_{n-1} s / sqrt(n) <= 0.5 first at n = 39 and 42
    assert rows[0]["runs for ± 0.5"] == "39 / 42"
    assert "conf Avg Gap by tuning mode — forget 10%" in suite_tables(tiny_suite(grid={"fractions": [0.1]}), records)


def test_continuous_table_times_retrain_by_its_retrainings() -> None:
    from amun_plugin.bench.suite_config import SuiteKind
    from amun_plugin.bench.suite_tables import _continuous_suite

    config = tiny_suite(kind=SuiteKind.CONTINUOUS.value, continuous={"requests": 2, "fraction": 0.05})
    last = {"fr_minus_ft": 10.0, "gaps": {config.evaluation.tables[0].title: 0.0}}
    records = [record_line("chain", "Retrain", seconds=0.0,
                           requests=[{"request": 1}, {**last, "request": 2, "retrain_seconds": 42.0}]),
               record_line("chain", "AMUN", seconds=3.0,
                           requests=[{"request": 1, "fr_minus_ft": 1.0}, {**last, "request": 2, "fr_minus_ft": 4.0}])]
    table = _continuous_suite(config, records)
    assert "| Retrain | — | 10.00 ± n/a | 0.00 ± n/a | — | 42.0 ± n/a | 1 |" in table
    assert "| AMUN | 1.00 ± n/a | 4.00 ± n/a | 0.00 ± n/a | — | 3.0 ± n/a | 1 |" in table


def test_tuning_json_keeps_the_choices_of_methods_an_invocation_did_not_run(tmp_path: Path) -> None:
    from amun_plugin.bench.runner import _write_choices

    path = tmp_path / "tuning.json"
    ft = ("standard", 0.1, "with_retain", "FT")
    amun = ("standard", 0.1, "with_retain", "AMUN")
    _write_choices(path, {("oracle", ft): {"options": {"lr": 0.04}, "score": 1.0},
                          ("oracle", amun): {"options": {"lr": 0.1}, "score": 3.0}})
    _write_choices(path, {("oracle", amun): {"options": {"lr": 0.01}, "score": 2.0}})  # a --methods AMUN rerun
    entries = {e["method"]: e for e in json.loads(path.read_text())}
    assert entries["FT"]["options"] == {"lr": 0.04}  # kept from the earlier invocation
    assert entries["AMUN"]["options"] == {"lr": 0.01} and len(entries) == 2  # replaced, not duplicated


def test_a_continuous_method_with_holdout_is_calibrated_at_every_request(tmp_path: Path) -> None:
    from amun_plugin.bench.suite_config import SuiteKind

    amun = {"name": "amun", "options": {"epochs": 1, "batch_size": 64, "search": {"max_doublings": 6}}}
    methods = [{**amun, "label": "AMUN"}, {**amun, "label": "AMUN (calibrated)", "holdout": True}]
    config = tiny_suite(kind=SuiteKind.CONTINUOUS.value, validation_size=60, methods=methods,
                        continuous={"requests": 2, "fraction": 0.03, "retrain": "none"},
                        grid={"forget_seeds": [0]})
    run_suite(config, tmp_path / "out", cache_dir=tmp_path / "cache")
    chains = {r["method"]: r for r in read(tmp_path / "out") if r["kind"] == "chain"}
    assert chains["AMUN (calibrated)"]["holdout"] is True and chains["AMUN"]["holdout"] is False
    assert all("calibrated_lr" in row for row in chains["AMUN (calibrated)"]["requests"])
    assert not any("calibrated_lr" in row for row in chains["AMUN"]["requests"])
    with pytest.raises(InvalidInputError, match="validation_size is 0"):
        tiny_suite(kind=SuiteKind.CONTINUOUS.value, methods=methods)
    with pytest.raises(InvalidInputError, match="for continuous suites"):
        tiny_suite(validation_size=60, methods=methods)


def test_calibrate_against_needs_holdout_and_a_known_value() -> None:
    from amun_plugin.bench.suite_config import MethodSpec

    assert MethodSpec("amun", holdout=True, calibrate_against="original").calibrate_against == "original"
    with pytest.raises(InvalidInputError, match="needs holdout: true"):
        MethodSpec("amun", calibrate_against="original")
    with pytest.raises(InvalidInputError, match="current or original"):
        MethodSpec("amun", holdout=True, calibrate_against="session")


def test_worker_processes_give_the_local_run_s_numbers(tmp_path: Path) -> None:
    config = tiny_suite(grid={"forget_seeds": [0, 1]})
    local = run_suite(config, tmp_path / "local", cache_dir=tmp_path / "cache_local", progress=False, echo=print)
    spread = run_suite(config, tmp_path / "spread", executor=ProcessExecutor(2), cache_dir=tmp_path / "cache_spread",
                       progress=False, echo=print)
    assert metric_view(read(spread)) == metric_view(read(local))
