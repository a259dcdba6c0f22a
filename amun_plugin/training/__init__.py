"""Training: the one SGD loop (:mod:`.loop`), the original-model variants of the robust suite
(:mod:`.robust`: TRADES, Lipschitz clipping) and a classifier from scratch with its checkpoint
header (:mod:`.classifier`)."""

from amun_plugin.training.classifier import checkpoint_metadata, train_classifier
from amun_plugin.training.loop import (
    Augment,
    LossFn,
    Schedule,
    TrainConfig,
    TrainStats,
    augment_batch,
    make_optimizer,
    make_scheduler,
    train_model,
)
from amun_plugin.training.robust import LipschitzConfig, TradesConfig, train_original

__all__ = [
    "Augment",
    "LipschitzConfig",
    "LossFn",
    "Schedule",
    "TradesConfig",
    "TrainConfig",
    "TrainStats",
    "augment_batch",
    "checkpoint_metadata",
    "make_optimizer",
    "make_scheduler",
    "train_classifier",
    "train_model",
    "train_original",
]
