"""What ``amun audit`` does (the CLI only parses and prints): load checkpoints and their data,
open or build the reference bank, audit every checkpoint and write one report folder each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from amun_plugin.config import make_config
from amun_plugin.data.base import LabeledData, load_npz_pair
from amun_plugin.data.splits import SplitConfig, UnlearningSplit, make_split, stratified_indices
from amun_plugin.errors import InvalidInputError
from amun_plugin.evaluate.audit import DEFAULT_AUDIT_EVALUATORS, audit_many
from amun_plugin.evaluate.labels import label_of, labelled_row
from amun_plugin.evaluate.markdown import markdown_table
from amun_plugin.evaluate.reference import ReferenceBank, build_reference_bank, concat_population
from amun_plugin.evaluate.retrain_free import retrain_free_table
from amun_plugin.evaluate.rmia_probe import RmiaProbe
from amun_plugin.models.checkpoint import CheckpointMetadata
from amun_plugin.plugins import PluginHost, get_plugin_manager
from amun_plugin.training import TrainConfig

__all__ = ["SUMMARY_METRICS", "AuditHoldout", "audit_command", "audit_holdout", "audited_test", "checked_split",
           "recorded_split"]

SUMMARY_METRICS = ("accuracy.UA", "accuracy.RA", "accuracy.TA", "rmia.FT_AUC", "rmia.RT_AUC",
                   "confidence_mia.FT_AUC", "mis.MIS", "art_blackbox.FT_AUC")
"""The metrics of the summary table ``amun audit`` prints (those computed), labelled by ``evaluate.labels``."""


def audit_command(*, checkpoints: Sequence[str], retrained: str | None, original: str | None,
                  split: SplitConfig | None, evaluators: Sequence[str], evaluator_options: Mapping[str, Any],
                  bank_dir: str | None, reference_models: int | None, seed: int, device: str, out: str,
                  echo: Callable[[str], Any], plots: bool = True,
                  dataset_options: Mapping[str, Any] | None = None, holdout_size: int | None = None,
                  holdout_file: str | None = None, host: PluginHost | None = None) -> dict[str, Any]:
    """Audit ``checkpoints`` (folder ``out/<stem>`` each) with the retrained / original models beside
    (audited as rows "retrained" / "original": the values the Avg Gap compares against).

    The test split is the one ``amun unlearn`` audited: samples it held out (the calibration's
    holdout, the validation set; recorded in the checkpoints) are left out (:func:`audited_test`).

    The data is the checkpoint's dataset; the forget split is ``split`` or, when None, the split
    the checkpoints record (:func:`checked_split`: a mismatch with any recorded split is refused).
    With ``bank_dir`` RMIA runs; a missing bank is
    built there when ``reference_models`` (K) is given, with the recipe recorded in the original
    (else the first) checkpoint.

    With ``original`` and a holdout (``holdout_size`` test samples, ``holdout_file`` or, by default,
    the calibration holdout the checkpoints record; :func:`audit_holdout`) the retrain-free audit
    runs too (:mod:`amun_plugin.evaluate.retrain_free`; RMIA from the bank as its probe with
    ``bank_dir``).
    """
    if not checkpoints:
        raise InvalidInputError("name at least one checkpoint to audit")
    if (holdout_size or holdout_file) and original is None:
        raise InvalidInputError("the retrain-free audit (--holdout-size / --holdout-file) needs --original MODEL: "
                                "the model before unlearning, whose held-out accuracy stands in for a retrained one's")
    host = host or get_plugin_manager()
    loaded = {Path(p).stem: host.load_model(p, device=device) for p in checkpoints}
    if len(loaded) != len(checkpoints):
        raise InvalidInputError("checkpoints to audit must have distinct file names (one report folder each)")
    first_meta = next(iter(loaded.values()))[1]
    if first_meta.dataset is None:
        raise InvalidInputError(f"{checkpoints[0]} does not record its dataset; train it with `amun train`")
    bundle = host.load_checkpoint_dataset(first_meta, dataset_options)
    references = {role: host.load_model(path, device=device) if path else None
                  for role, path in (("retrained", retrained), ("original", original))}
    recorded = {f"{Path(p).name} (unlearned)": meta for p, (_, meta) in zip(checkpoints, loaded.values())}
    if retrained is not None and references["retrained"] is not None:
        recorded[f"{Path(retrained).name} (retrained)"] = references["retrained"][1]
    chosen = checked_split(bundle.train, split, recorded)
    test, excluded = audited_test(bundle.test, recorded.values())
    if excluded:
        echo(f"auditing {len(test)} test samples: {excluded} held out by `amun unlearn` (calibration / validation "
             "data) are left out, as its own table did")
    held = audit_holdout(bundle.test, test, [meta for _, meta in loaded.values()], size=holdout_size,
                         file=holdout_file, seed=seed)
    test = held.audited
    bank = _bank(host, bank_dir, reference_models, bundle, references["original"] or (None, first_meta), seed, device)
    free = _retrain_free_inputs(held, references["original"] is not None, bank, bundle, seed, echo)
    names = list(evaluators) or list(DEFAULT_AUDIT_EVALUATORS) + (["rmia"] if bank is not None else [])
    models = {name: model for name, (model, _) in loaded.items()}
    for role, reference in references.items():  # the rows the Avg Gap compares against, shown beside
        if reference is not None:
            models.setdefault(f"{role}", reference[0])
    results = audit_many(models, chosen.retain(bundle.train), chosen.forget(bundle.train), test, names,
                         retrained=references["retrained"][0] if references["retrained"] else None,
                         original=references["original"][0] if references["original"] else None,
                         out_dir=out, reference_bank=bank, evaluator_options=evaluator_options, device=device,
                         seed=seed, plugins=host, plots=plots, **free)
    shown = [k for k in SUMMARY_METRICS if any(k in r["metrics"] for r in results.values())]
    rows = [labelled_row(name, r["metrics"], {"avg_gap": r.get("avg_gap")}, shown) for name, r in results.items()]
    echo(markdown_table(rows, ["model", *map(label_of, shown), "avg_gap"]))
    if free:
        echo(retrain_free_table(results))
    echo(f"reports written under {out}/ ({', '.join(results)})")
    return results


def audited_test(test: LabeledData, sources: Iterable[CheckpointMetadata]) -> tuple[LabeledData, int]:
    """(``test`` without every sample an ``amun unlearn`` of ``sources`` held out of it, how many
    were left out): a model is never scored on the data it was calibrated or validated on."""
    held: set[int] = set()
    for metadata in sources:
        for indices in ((metadata.extra.get("unlearned") or {}).get("held_out_test_indices") or {}).values():
            held.update(int(i) for i in indices)
    if not held:
        return test, 0
    if max(held) >= len(test):
        raise InvalidInputError(f"a checkpoint records held-out test index {max(held)}, but the test split has "
                                f"{len(test)} samples: audit with the dataset options it was made with")
    return test.subset(np.setdiff1d(np.arange(len(test)), np.fromiter(held, dtype=np.int64)), name="test"), len(held)


@dataclass(frozen=True)
class AuditHoldout:
    """The held-out data of the retrain-free audit: ``holdout`` (None: none), the test split left
    to audit, and where the holdout came from (``source``, one line; ``note``: a caveat or "")."""

    holdout: LabeledData | None
    audited: LabeledData
    source: str = ""
    note: str = ""


def audit_holdout(test_split: LabeledData, audited: LabeledData, sources: Sequence[CheckpointMetadata], *,
                  size: int | None = None, file: str | None = None, seed: int = 0) -> AuditHoldout:
    """The retrain-free audit's holdout: ``size`` class-stratified samples of ``audited`` (seeded, as
    :func:`~amun_plugin.unlearn.job.hold_out` draws them; the rest is audited), the samples of
    ``file`` (.npz of x, y), or, with neither, the calibration holdout ``amun unlearn`` recorded in
    ``sources`` (test indices into ``test_split``; already left out of ``audited``): optimistic, as
    the calibration chose its stopping point on it. None when there is none (or ``size`` 0)."""
    if size and file:
        raise InvalidInputError("give either --holdout-file or --holdout-size, not both")
    if size is not None and size < 0:
        raise InvalidInputError(f"--holdout-size must be >= 0, got {size}")
    if file is not None:
        return AuditHoldout(load_npz_pair(file, test_split.num_classes, "holdout"), audited,
                            f"the samples of {file}")
    if size is not None:
        return _fresh_holdout(audited, size, seed)
    recorded = sorted({int(i) for meta in sources for i in
                       ((meta.extra.get("unlearned") or {}).get("held_out_test_indices") or {}).get("holdout", [])})
    if not recorded:
        return AuditHoldout(None, audited)
    return AuditHoldout(test_split.subset(np.asarray(recorded), name="holdout"), audited,
                        f"the {len(recorded)} test samples `amun unlearn` calibrated on (recorded in the checkpoint)",
                        "the estimate is measured on the data the calibration saw, so it is optimistic: give "
                        "--holdout-size N for fresh held-out data")


def _fresh_holdout(audited: LabeledData, size: int, seed: int) -> AuditHoldout:
    """``size`` class-stratified samples of ``audited`` as the holdout, the rest audited (0: none)."""
    if size == 0:
        return AuditHoldout(None, audited)
    if size >= len(audited):
        raise InvalidInputError(f"a holdout of {size} samples must be smaller than the test samples left "
                                f"({len(audited)})")
    chosen = stratified_indices(audited.y.numpy(), size, seed=seed)
    rest = np.setdiff1d(np.arange(len(audited)), chosen)
    return AuditHoldout(audited.subset(chosen, name="holdout"), audited.subset(rest, name="test"),
                        f"{size} fresh test samples (class-stratified, seed {seed}; left out of the audited "
                        "test split)")




def _retrain_free_inputs(held: AuditHoldout, with_original: bool, bank: ReferenceBank | None, bundle: Any,
                         seed: int, echo: Callable[[str], Any]) -> dict[str, Any]:
    """The retrain-free keywords of ``audit_many`` (none without a holdout or the original model)."""
    if held.holdout is None:
        return {}
    if not with_original:
        echo(f"tip: give --original MODEL for the retrain-free estimate on {held.source}")
        return {}
    echo(f"retrain-free audit on {held.source}")
    probe = None if bank is None else RmiaProbe(bank, concat_population(bundle.train, bundle.test), seed=seed)
    return {"holdout": held.holdout, "membership": probe, "retrain_free": {"note": held.note} if held.note else None}


def _recorded(metadata: CheckpointMetadata) -> dict[str, Any] | None:
    """The forget split a checkpoint records: ``amun unlearn``'s, or ``amun train --without-forget``'s."""
    return (metadata.extra.get("unlearned") or {}).get("split") or metadata.extra.get("trained_without_forget")


def checked_split(train: Any, split: SplitConfig | None, sources: Mapping[str, CheckpointMetadata]) -> UnlearningSplit:
    """The forget split of the audit: ``split`` or, when None, the one the checkpoints record
    (``sources``: a name for messages -> metadata). Every split a checkpoint records must be the
    same as the one used: an audit against another forget set reports wrong numbers, so it is refused."""
    recorded = {name: UnlearningSplit.from_dict(found) for name, meta in sources.items()
                if (found := _recorded(meta)) is not None}
    if split is not None:
        chosen, given = make_split(train, split), "the forget set given on the command line"
    elif recorded:
        given, chosen = next(iter(recorded.items()))
    else:
        raise InvalidInputError("each checkpoint records no forget split (none was made by `amun unlearn` or "
                                "`amun train --without-forget`): give --forget-fraction, --forget-indices or "
                                "--forget-classes")
    for name, other in recorded.items():
        if other != chosen:
            raise InvalidInputError(
                f"{name} records another forget split ({other.forget_indices.size} forget samples) than "
                f"{given} ({chosen.forget_indices.size}): audit with the split the models were made with "
                "(leave out the --forget-* options to use the recorded one)")
    return chosen


def recorded_split(train: Any, split: SplitConfig | None, metadata: CheckpointMetadata) -> UnlearningSplit:
    """``split`` of ``train``, or (None) the forget split ``amun unlearn`` recorded in the checkpoint."""
    if split is not None:
        return make_split(train, split)
    recorded = (metadata.extra.get("unlearned") or {}).get("split")
    if recorded is None:
        raise InvalidInputError("the checkpoint records no forget split (it was not made by `amun unlearn`): "
                                "give --forget-fraction, --forget-indices or --forget-classes")
    return UnlearningSplit.from_dict(recorded)


def _bank(host: PluginHost, bank_dir: str | None, reference_models: int | None, bundle: Any,
          recipe_source: tuple[Any, CheckpointMetadata], seed: int, device: str) -> ReferenceBank | None:
    """Open the bank in ``bank_dir``, or build it there when K is given and it does not exist yet."""
    if bank_dir is None:
        if reference_models is not None:
            raise InvalidInputError("--reference-models needs --bank-dir (where the reference models are stored)")
        return None
    if reference_models is None:
        return ReferenceBank.open(bank_dir)
    metadata = recipe_source[1]
    recipe = make_config(TrainConfig, {k: v for k, v in metadata.recipe.items() if k != "seed"})
    architecture = host.make_architecture(metadata.architecture, metadata.architecture_config)
    return build_reference_bank(bank_dir, concat_population(bundle.train, bundle.test), architecture, recipe,
                                num_models=reference_models, seed=seed, device=device)
