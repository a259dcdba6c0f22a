"""Helpers of the audit tests: a tiny architecture, a tiny population and a lookup-table model
whose outputs are chosen per sample (so a test can make any set look like members)."""

from __future__ import annotations

import torch
from tiny_fixtures import TinyNet, make_tiny_data
from torch import Tensor, nn

from amun_plugin.data.base import LabeledData
from amun_plugin.evaluate.base import AuditData
from amun_plugin.models.base import ModelArchitecture


class TinyArchitecture(ModelArchitecture):
    """Builds ``TinyNet`` ((N, 1, 4, 4) -> 3 logits)."""

    name = "tiny_test_net"

    def build(self, num_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
        return TinyNet()


def tiny_audit_data() -> tuple[AuditData, LabeledData]:
    """(AuditData with 60 retain, 12 forget, 36 test points; their population in one LabeledData)."""
    train, test = make_tiny_data(72, seed=0), make_tiny_data(36, seed=1)
    forget = train.subset(range(12), name="forget")
    retain = train.subset(range(12, 72), name="retain")
    population = LabeledData(torch.cat([train.x, test.x]), torch.cat([train.y, test.y]), 3, "population")
    return AuditData(retain, forget, LabeledData(test.x, test.y, 3, "test")), population


def indexed_data(n: int, num_classes: int = 3, name: str = "data", offset: int = 0, total: int = 64) -> LabeledData:
    """``n`` samples of shape (1, 4, 4) whose pixel [0, 0, 0] encodes the id offset + i (of ``total``)."""
    ids = torch.arange(offset, offset + n)
    x = torch.full((n, 1, 4, 4), 0.5)
    x[:, 0, 0, 0] = ids.float() / (total - 1)
    return LabeledData(x, ids % num_classes, num_classes, name)


class LookupModel(nn.Module):
    """Logits from a table (total, C) indexed by the id in pixel [0, 0, 0] of ``indexed_data``."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.float())
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the model has a device
        self.inner = nn.Linear(1, 1)

    def forward(self, x: Tensor) -> Tensor:
        ids = (x[:, 0, 0, 0] * (self.table.shape[0] - 1)).round().long()
        return self.table[ids] * self.scale


def confident_on(ids: Tensor, total: int = 64, num_classes: int = 3, strong: float = 8.0) -> LookupModel:
    """A model sure of the true class (id % C) on ``ids`` and unsure (margin 0.3) elsewhere."""
    table = torch.zeros(total, num_classes)
    labels = torch.arange(total) % num_classes
    table[torch.arange(total), labels] = 0.3
    table[ids, labels[ids]] = strong
    return LookupModel(table)
