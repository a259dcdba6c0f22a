"""Measurement behind ``tests/unlearn/test_amun_forgets_membership.py``: how far AMUN lowers the
forget-vs-test confidence-attack AUC (``confidence_mia.FT_AUC``, percent) on the tests' memorising
fixture (``amun_plugin.testing.make_memorising``: D_F = members 0..15, D_R = members 16..79,
D_T = the 40 non-members), over unlearning seeds, in both settings (with / without D_R).

Control: the same fine-tuning with the same adversarial inputs but D_F's *true* labels in place of
the adversarial labels (what a bug dropping y_adv would do), to show the drop comes from AMUN's labels.

    python benchmarks/amun_fixture_auc.py [--seeds 10] [--out benchmarks/results/amun_fixture_auc]

Writes results.json, results.md and env.json under ``--out`` (about a minute on one core).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import torch

import amun_plugin
from amun_plugin.attacks import SearchConfig, nearest_adversarial
from amun_plugin.harness import atomic_write_json, atomic_write_text, format_interval, record_invocation, t_interval
from amun_plugin.testing import make_memorising

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"lr": 0.05, "epochs": 10, "step_size": 10, "batch_size": 16}  # the test's recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "amun_fixture_auc"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # AMUN's "no holdout given" warning, once per run
    model, members, non_members = make_memorising()
    forget, retain = members.subset(range(16), name="forget"), members.subset(range(16, 80), name="retain")
    host = amun_plugin.get_plugin_manager(autoload=False)

    def ft_auc(m: torch.nn.Module) -> float:
        report = amun_plugin.audit(m, retain, forget, non_members, ["confidence_mia"], plugins=host, plots=False)
        return float(report["metrics"]["confidence_mia.FT_AUC"])

    adversarial = nearest_adversarial(model, forget, host.attacks.get("native_min_norm")(), SearchConfig())
    true_labels = dataclasses.replace(adversarial, y_adv=adversarial.y_true.clone())
    original = ft_auc(model)
    results: dict = {"recipe": RECIPE, "original_FT_AUC": original, "seeds": list(range(args.seeds)), "settings": {}}
    for setting, kept in (("with_retain", retain), ("without_retain", None)):
        arms = {"amun": [], "true_labels_control": []}
        for seed in range(args.seeds):
            arms["amun"].append(ft_auc(amun_plugin.unlearn(model, forget, kept, plugins=host, seed=seed,
                                                           **RECIPE).model))
            arms["true_labels_control"].append(ft_auc(amun_plugin.unlearn(
                model, forget, kept, plugins=host, seed=seed, adversarial=true_labels, **RECIPE).model))
        drops = {arm: [original - v for v in values] for arm, values in arms.items()}
        results["settings"][setting] = {
            arm: {"FT_AUC": arms[arm], "drop": drops[arm], "min_drop": min(drops[arm]),
                  "mean_drop": t_interval(drops[arm]).mean, "drop_ci95_half_width": t_interval(drops[arm]).half_width}
            for arm in arms}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", results)
    lines = [f"# AMUN on the memorising test fixture (n = {args.seeds} unlearning seeds per cell)", "",
             f"Original FT_AUC (confidence attack, D_F vs D_T): {original:.1f}. Recipe: {RECIPE}.", "",
             "| setting | arm | drop in FT_AUC (mean ± 95% t) | smallest drop |", "|---|---|---|---|"]
    for setting, arms_out in results["settings"].items():
        for arm, row in arms_out.items():
            lines.append(f"| {setting} | {arm} | {format_interval(t_interval(row['drop']), 1, signed=True)} "
                         f"| {row['min_drop']:.1f} |")
    atomic_write_text(out / "results.md", "\n".join(lines) + "\n")
    record_invocation(out, "local", "cpu", ["benchmarks/amun_fixture_auc.py", *sys.argv[1:]])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
