"""How much held-out data does retrain-free selection need? (issue 10)

The suites give the retrain-free mode 200 held-out test images (``validation_size``). With D_R,
on ``fmnist-paper``, calibrated AMUN then loses 2-4 points of test accuracy that those 200
images do not show (its estimated TA term is 0-0.5). This script reruns, on the suite's cached
artefacts (original model, retrained models, RMIA bank, D_A), the retrain-free selection with
the suite's 200 images and with ``--extra`` images drawn from the part of the Fashion-MNIST test
split that the preset never uses (unseen by every model): AMUN calibrated on each, and the
baselines named in ``--baselines`` grid-tuned on the tuning forget set by the same estimated gap
and run on the test forget sets. Scores are the suite's (UA / RA / TA / RMIA FT AUC on the
suite's D_T, Avg Gap to the retrained model); paired differences between holdouts and against
AMUN, mean +- 95% t half-width.

    python benchmarks/calibration_holdout.py --out benchmarks/results/calibration_holdout-fmnist-paper

Resumable: every finished run is a JSON file in ``OUT/runs/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from amun_plugin import unlearn
from amun_plugin.bench import load_suite
from amun_plugin.data import LabeledData
from amun_plugin.harness import (
    ArtifactCache,
    Cell,
    CellKind,
    Workspace,
    adversarial_for,
    atomic_write_json,
    atomic_write_text,
    default_cache_dir,
    format_interval,
    gaps_by_table,
    grid_points,
    method_spec,
    record_invocation,
    retrain_free_estimate,
    retrained_metrics,
    run_script,
    shared_samples,
    t_interval,
)

SUITE_OF = {"with_retain": "table1", "without_retain": "table2"}


def extra_holdout(ws: Workspace, size: int, seed: int) -> LabeledData:
    """``size`` Fashion-MNIST test images outside the preset's test subset (never trained on)."""
    full = ws.plugins.load_dataset(ws.config.dataset.name, {"seed": ws.config.dataset.options.get("seed", 0)}).test
    unused = torch.nonzero(~shared_samples(full.x, ws.bundle.test.x)).squeeze(1)
    if len(unused) < size:
        raise SystemExit(f"error: only {len(unused)} unused test images, asked for {size}")
    pick = unused[torch.randperm(len(unused), generator=torch.Generator().manual_seed(seed))[:size]]
    return full.subset(pick.sort().values, name=f"extra holdout ({size})")


def one_run(ws: Workspace, label: str, setting: str, forget_seed: int, holdout: LabeledData,
            options: dict[str, Any], calibrate: bool) -> dict[str, Any]:
    """One unlearning run scored as the suite scores it, plus its estimated gap on ``holdout``."""
    spec = method_spec(ws.config, label)
    split = ws.split(0.1, forget_seed)
    model, _ = ws.original(0)
    forget, retain = split.forget(ws.train), split.retain(ws.train)
    given_retain = retain if setting == "with_retain" else None
    adversarial = adversarial_for(ws, spec, "standard", 0, split)
    chosen = {**spec.options_in(setting), **options}
    chosen = ws.plugins.unlearners.get(spec.name)(chosen).schedule_options(chosen, calibrate)  # the suite's way
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = unlearn(model, forget, given_retain, method=spec.name, validation=ws.validation,
                         holdout=holdout if calibrate else None, adversarial=adversarial, seed=0,
                         plugins=ws.plugins, **chosen)
    metrics = ws.audit(result.model, retain, forget)
    retrain, _ = retrained_metrics(ws, Cell(CellKind.RETRAIN, "Retrain", "standard", 0, 0.1, forget_seed), split)
    return {"metrics": metrics, "gaps": gaps_by_table(ws.config, metrics, retrain),
            "retrain": {k: retrain[k] for k in ("accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.FT_AUC")},
            "proxy": retrain_free_estimate(holdout, model, result.model, forget, given_retain, ws.config.device),
            "stats": {k: v for k, v in result.stats.items() if isinstance(v, (int, float, str))}}


def cached(folder: Path, name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``one_run(*args, **kwargs)``, read from ``folder/runs/name.json`` when it ran before."""
    path = folder / "runs" / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    record = one_run(*args, **kwargs)
    atomic_write_json(path, record)
    print(f"  {name}: Avg Gap {record['gaps']['RMIA']:.2f}, estimated {record['proxy']['estimated_gap']:.2f}",
          flush=True)
    return record


def tuned_options(ws: Workspace, folder: Path, label: str, setting: str, holdout_name: str,
                  holdout: LabeledData, tuning_seed: int) -> dict[str, Any]:
    """The grid point of lowest estimated gap on ``holdout`` for the tuning forget set."""
    best: tuple[float, str, dict] | None = None
    for point in grid_points(method_spec(ws.config, label)):
        tag = "-".join(f"{k}{v}" for k, v in sorted(point.items()))
        run = cached(folder, f"tune-{label}-{setting}-{holdout_name}-{tag}",
                     ws, label, setting, tuning_seed, holdout, point, calibrate=False)
        key = (run["proxy"]["estimated_gap"], tag, point)
        best = key if best is None or key[:2] < best[:2] else best
    assert best is not None
    return best[2]


def summarise(runs: dict[tuple[str, str, str], list[dict]]) -> tuple[str, list[dict]]:
    """Markdown table and JSON rows: per (setting, method, holdout) the mean +- 95% CI of each score."""
    lines = ["| setting | method | holdout | UA | RA | TA | FT AUC | Avg Gap (RMIA) | estimated gap | "
             "TA drop on D_T | estimated TA term | runs |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for (setting, label, holdout), records in sorted(runs.items()):
        col = {k: [r["metrics"][f"{'rmia' if k == 'FT_AUC' else 'accuracy'}.{k}"] for r in records]
               for k in ("UA", "RA", "TA", "FT_AUC")}
        gap = [r["gaps"]["RMIA"] for r in records]
        est = [r["proxy"]["estimated_gap"] for r in records]
        drop = [r["original_TA"] - r["metrics"]["accuracy.TA"] for r in records]
        term = [r["proxy"]["terms"]["TA"] for r in records]
        named = {**col, "avg_gap": gap, "estimated_gap": est, "ta_drop": drop, "ta_term": term}
        rows.append({"setting": setting, "method": label, "holdout": holdout, "n": len(records),
                     **{k: [t_interval(v).mean, t_interval(v).half_width] for k, v in named.items()}})
        cells = [format_interval(t_interval(v)) for v in named.values()]
        lines.append(f"| {setting} | {label} | {holdout} | " + " | ".join(cells) + f" | {len(records)} |")
    return "\n".join(lines), rows


def paired(runs, a, b) -> str:
    """Avg Gap of run set ``a`` minus ``b`` on the same forget sets."""
    diff = [x["gaps"]["RMIA"] - y["gaps"]["RMIA"] for x, y in zip(runs[a], runs[b])]
    text = format_interval(t_interval(diff), signed=True, mark=True)
    return f"| {a[0]} | {a[1]} ({a[2]}) | {b[1]} ({b[2]}) | {text} | {len(diff)} |"


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="fmnist-paper")
    parser.add_argument("--forget-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--extra", type=int, default=2000, help="unused test images in the large holdout")
    parser.add_argument("--settings", nargs="+", default=["with_retain", "without_retain"])
    parser.add_argument("--baselines-with-retain", nargs="*", default=["FT", "l1-Sparse"])
    parser.add_argument("--baselines-without-retain", nargs="*", default=["BS"])
    parser.add_argument("--out", default="benchmarks/results/calibration_holdout-fmnist-paper")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = Path(args.out)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    record_invocation(folder, "local", "cpu", ["benchmarks/calibration_holdout.py", *sys.argv[1:]])
    runs: dict[tuple[str, str, str], list[dict]] = {}
    small = ""
    for setting in args.settings:
        ws = Workspace(load_suite(SUITE_OF[setting], args.preset), ArtifactCache(default_cache_dir()))
        original_ta = ws.audit(ws.original(0)[0], ws.split(0.1, 0).retain(ws.train),
                               ws.split(0.1, 0).forget(ws.train))["accuracy.TA"]
        small = f"suite {len(ws.validation)}"
        holdouts = {small: ws.validation, f"extra {args.extra}": extra_holdout(ws, args.extra, 0)}
        labels = [m.label for m in ws.config.methods]
        for hname, holdout in holdouts.items():
            print(f"{setting}, holdout {hname}", flush=True)
            baselines = getattr(args, f"baselines_{setting}") if hname != small else []  # small: the suite's rows
            plans = [("AMUN", {}, True)] + [
                (b, tuned_options(ws, folder, b, setting, hname, holdout, ws.config.tuning.forget_seed), False)
                for b in baselines if b in labels]
            for label, options, calibrate in plans:
                for seed in args.forget_seeds:
                    record = cached(folder, f"run-{label}-{setting}-{hname}-{seed}",
                                    ws, label, setting, seed, holdout, options, calibrate)
                    record.update(original_TA=original_ta, options=options)
                    runs.setdefault((setting, label, hname), []).append(record)
    table, rows = summarise(runs)
    comparisons = ["| setting | run | against | Δ Avg Gap (RMIA) | pairs |", "|---|---|---|---|---|"]
    for (setting, label, hname) in sorted(runs):
        if label == "AMUN" and hname.startswith("extra"):
            comparisons.append(paired(runs, (setting, label, hname), (setting, label, small)))
        elif label != "AMUN":
            comparisons.append(paired(runs, (setting, "AMUN", hname), (setting, label, hname)))
    text = (f"# Retrain-free selection with a small and a large holdout ({args.preset}, forget 10%)\n\n"
            "Each cell: mean ± 95% t half-width over forget sets "
            f"{args.forget_seeds}. TA drop on D_T: the original model's test accuracy ({original_ta:.2f}) "
            "minus the run's; estimated TA term: what the selection saw of it on its holdout.\n\n"
            f"{table}\n\nPaired differences (`*`: the 95% interval excludes 0):\n\n" + "\n".join(comparisons) + "\n")
    atomic_write_text(folder / "table.md", text)
    atomic_write_json(folder / "table.json", {"rows": rows, "chosen": {f"{k[0]}|{k[1]}|{k[2]}": v[0]["options"]
                                                                         for k, v in runs.items()}})
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_script(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
