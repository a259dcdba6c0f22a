"""Does AMUN forget out of the box? Fixed defaults vs retrain-free calibration (issue 10).

On the suites' quick preset (Fashion-MNIST, 2,000 training images, the memorising ``cnn``), for
several random 10% forget sets: a model retrained without D_F (the oracle, read only to score),
AMUN with its fixed defaults, and AMUN calibrated on 200 held-out test images (never on the
retrained model), in both settings; AMUN's ``adv_only`` variant calibrated the same way is a
separate row. The 800 other test images are D_T. Scores: UA / RA / TA (%), the forget-vs-test
AUC of the logit-scaled confidence (%, 50 = unseen), the Avg Gap to the retrained model over
these four, the calibration's own estimated gap, and wall time against the retraining's.

    python benchmarks/calibration.py --forget-seeds 0 1 2 3 4 --out benchmarks/results/calibration

Resumable: each finished (forget seed) is a JSON file in the output folder's ``runs/``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import amun_plugin
from amun_plugin import get_plugin_manager
from amun_plugin.harness import (
    atomic_write_json,
    atomic_write_text,
    estimated_gap,
    format_interval,
    logit_scaled_confidence,
    measure_proxy,
    record_invocation,
    retain_probe,
    split_off,
    t_interval,
)
from amun_plugin.models import predict_logits
from amun_plugin.training import TrainConfig, train_classifier

RECIPE = TrainConfig(epochs=40, batch_size=32, lr=0.03, momentum=0.9, weight_decay=0.0, schedule="cosine")
ROWS = [("AMUN (fixed defaults)", {}, False), ("AMUN (calibrated)", {}, True),
        ("AMUN adv-only (calibrated)", {"variant": "adv_only"}, True)]


def scores(model, forget, retain, test):
    """UA / RA / TA (%) and the forget-vs-test confidence AUC (%)."""
    out, conf = {}, {}
    for key, part in (("UA", forget), ("RA", retain), ("TA", test)):
        logits = predict_logits(model, part.x)
        out[key] = 100.0 * float((logits.argmax(1) == part.y).double().mean())
        conf[key] = logit_scaled_confidence(logits, part.y).numpy()
    labels = np.r_[np.ones(len(conf["UA"])), np.zeros(len(conf["TA"]))]
    out["FT_AUC"] = 100.0 * float(roc_auc_score(labels, np.r_[conf["UA"], conf["TA"]]))
    return out


def gap(metrics, retrain):
    return float(np.mean([abs(metrics[k] - retrain[k]) for k in ("UA", "RA", "TA", "FT_AUC")]))


def one_seed(seed, data, original, arch, host):
    train, holdout, test = data
    n = len(train)
    forget_idx = np.sort(np.random.default_rng(seed).choice(n, n // 10, replace=False))
    retain_idx = np.setdiff1d(np.arange(n), forget_idx)
    forget, retain = train.subset(forget_idx, "forget"), train.subset(retain_idx, "retain")
    start = time.perf_counter()
    retrained = train_classifier(arch, retain, RECIPE, seed=seed + 1)
    retrain_seconds = time.perf_counter() - start
    reference = scores(retrained, forget, retain, test)
    record = {"forget_seed": seed, "retrain_seconds": retrain_seconds, "retrain": reference,
              "original": scores(original, forget, retain, test), "rows": []}
    record["original"]["avg_gap"] = gap(record["original"], reference)
    for setting in ("with_retain", "without_retain"):
        use_retain = retain if setting == "with_retain" else None
        probe = retain_probe(use_retain, len(holdout), 0)
        before = measure_proxy(original, forget, holdout, probe)
        for label, options, calibrate in ROWS:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = amun_plugin.unlearn(original, forget, use_retain, method="amun", plugins=host, seed=seed,
                                             holdout=holdout if calibrate else None, **options)
            seconds = time.perf_counter() - start
            metrics = scores(result.model, forget, retain, test)
            estimate, _ = estimated_gap(measure_proxy(result.model, forget, holdout, probe), before)
            stats = {k: v for k, v in result.stats.items() if k.startswith("calibrat") and k != "calibration"}
            record["rows"].append({"method": label, "setting": setting, "metrics": metrics,
                                   "avg_gap": gap(metrics, reference), "estimated_gap": estimate,
                                   "seconds": seconds, "time_ratio": seconds / retrain_seconds, "stats": stats})
    return record


def mean_ci(values):
    """(mean, 95% t half-width) for the JSON table."""
    interval = t_interval(values)
    return interval.mean, interval.half_width


def fmt(values, digits=2):
    return format_interval(t_interval(values), digits)


def report(records, original_info):
    lines = ["# AMUN: fixed defaults vs retrain-free calibration (Fashion-MNIST quick preset, forget 10%)", "",
             f"n = {len(records)} forget sets; mean ± 95% CI half-width (t). Original model: {original_info}.",
             "Avg Gap over UA / RA / TA / FT AUC (forget-vs-test confidence AUC) to a model retrained without D_F;",
             "the calibration reads 200 held-out test images, never the retrained model. Time ratio = AMUN's wall",
             "time (search included) / the retraining's, measured in the same process.", ""]
    table = {"rows": []}
    for setting in ("with_retain", "without_retain"):
        lines += [f"## {setting.replace('_', ' ')}", "",
                  "| method | UA | RA | TA | FT AUC | Avg Gap | estimated gap | time / retrain | Δ Avg Gap vs fixed |",
                  "|---|---|---|---|---|---|---|---|---|"]
        ref = [r["retrain"] for r in records]
        lines.append("| Retrain | " + " | ".join(fmt([m[k] for m in ref]) for k in ("UA", "RA", "TA", "FT_AUC"))
                     + " | 0 | — | 1 | — |")
        orig = [r["original"] for r in records]
        lines.append("| Original | " + " | ".join(fmt([m[k] for m in orig]) for k in ("UA", "RA", "TA", "FT_AUC"))
                     + f" | {fmt([m['avg_gap'] for m in orig])} | — | 0 | — |")
        fixed = [row["avg_gap"] for r in records for row in r["rows"]
                 if row["setting"] == setting and row["method"] == ROWS[0][0]]
        for label, _, _ in ROWS:
            rows = [row for r in records for row in r["rows"] if row["setting"] == setting and row["method"] == label]
            gaps = [row["avg_gap"] for row in rows]
            diff = t_interval(np.asarray(gaps) - np.asarray(fixed))
            mean, half = diff.mean, diff.half_width
            delta = "—" if label == ROWS[0][0] else format_interval(diff, signed=True, mark=True)
            lines.append(f"| {label} | " + " | ".join(fmt([row["metrics"][k] for row in rows])
                                                     for k in ("UA", "RA", "TA", "FT_AUC"))
                         + f" | {fmt(gaps)} | {fmt([row['estimated_gap'] for row in rows])} | "
                         f"{fmt([row['time_ratio'] for row in rows], 3)} | {delta} |")
            table["rows"].append({"setting": setting, "method": label, "avg_gap": mean_ci(gaps),
                                  "delta_vs_fixed": [mean, half],
                                  "time_ratio": mean_ci([r["time_ratio"] for r in rows]),
                                  "n": len(rows)})
        lines.append("")
    lines.append("`*`: the 95% CI of the paired difference (same forget sets) excludes 0.")
    return "\n".join(lines) + "\n", table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forget-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="calibration-results")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    record_invocation(out, "local", "cpu")
    host = get_plugin_manager()
    bundle = host.load_dataset("fashion_mnist", {"train_size": 2000, "test_size": 1000, "seed": 0})
    test, holdout = split_off(bundle.test, 200, 0, "holdout")
    arch = host.make_architecture("cnn", {"width": 8, "hidden": 128})
    original = train_classifier(arch, bundle.train, RECIPE, seed=0)
    train_acc = 100.0 * float((predict_logits(original, bundle.train.x).argmax(1) == bundle.train.y).double().mean())
    test_acc = 100.0 * float((predict_logits(original, test.x).argmax(1) == test.y).double().mean())
    if train_acc < 98.0 or test_acc < 20.0:
        raise SystemExit(f"the original model does not memorise (train {train_acc:.1f}%, test {test_acc:.1f}%): "
                         "nothing to unlearn; refusing to report on it")
    info = f"train accuracy {train_acc:.2f}%, test accuracy {test_acc:.2f}%"
    records = []
    for seed in args.forget_seeds:
        path = out / "runs" / f"forget_seed_{seed}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
            continue
        print(f"forget seed {seed}", flush=True)
        record = one_seed(seed, (bundle.train, holdout, test), original, arch, host)
        atomic_write_json(path, record)
        records.append(record)
        text, table = report(records, info)
        atomic_write_text(out / "table.md", text)
        atomic_write_json(out / "table.json", table)
    text, table = report(records, info)
    atomic_write_text(out / "table.md", text)
    atomic_write_json(out / "table.json", table)
    print(text)


if __name__ == "__main__":
    main()
