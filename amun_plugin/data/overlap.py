"""Inputs that should be disjoint but are not: forget samples inside the retain or test set.

Samples are compared by their exact input values (float32 bits), through a 64-bit integer hash
of each sample (deterministic, wrapping integer arithmetic) whose candidate matches are then
compared element by element, so a reported overlap is always a real one.

Policy (``check_disjoint``): when *every* forget sample is also in the other set (the usual
mistake: the whole training set passed as D_R, or the whole dataset as the test set), that is an
:class:`~amun_plugin.errors.InvalidInputError`; when only some are (exact duplicate images exist
in real datasets, e.g. Fashion-MNIST), one warning line gives the count.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from amun_plugin.data.base import LabeledData
from amun_plugin.errors import InvalidInputError

__all__ = ["check_disjoint", "shared_samples"]

_CHUNK = 4096


def _row_hashes(x: Tensor) -> Tensor:
    """(N,) int64: a hash of each sample's float32 bit pattern (N, ...) -> (N,)."""
    flat = x.detach().reshape(x.shape[0], -1).to("cpu", torch.float32).contiguous()
    gen = torch.Generator().manual_seed(0x5EED)
    coeffs = torch.randint(1, 2**62, (flat.shape[1],), generator=gen, dtype=torch.int64) | 1
    out = torch.empty(flat.shape[0], dtype=torch.int64)
    for start in range(0, flat.shape[0], _CHUNK):
        bits = flat[start:start + _CHUNK].view(torch.int32).to(torch.int64)
        out[start:start + _CHUNK] = (bits * coeffs).sum(dim=1)  # wraps modulo 2**64: order-independent
    return out


def shared_samples(a: Tensor, b: Tensor) -> Tensor:
    """(len(a),) bool: whether each sample of ``a`` (N, ...) equals some sample of ``b`` (M, ...)
    exactly. Samples of different shapes never match."""
    if a.shape[1:] != b.shape[1:] or a.shape[0] == 0 or b.shape[0] == 0:
        return torch.zeros(a.shape[0], dtype=torch.bool)
    ha, hb = _row_hashes(a), _row_hashes(b)
    candidates = torch.isin(ha, hb).nonzero(as_tuple=True)[0]
    found = torch.zeros(a.shape[0], dtype=torch.bool)
    if candidates.numel() == 0:
        return found
    by_hash: dict[int, list[int]] = {}
    for j in torch.isin(hb, ha[candidates]).nonzero(as_tuple=True)[0].tolist():
        by_hash.setdefault(int(hb[j]), []).append(j)
    a_cpu, b_cpu = a.detach().cpu(), b.detach().cpu()
    for i in candidates.tolist():
        found[i] = any(torch.equal(a_cpu[i], b_cpu[j]) for j in by_hash.get(int(ha[i]), []))
    return found


def check_disjoint(forget: LabeledData, other: LabeledData, advice: str) -> int:
    """Refuse ``other`` when it holds every sample of ``forget``; warn (one line) when it holds
    some. Returns the number of shared samples. ``advice`` ends the message."""
    shared = int(shared_samples(forget.x, other.x).sum())
    if shared == 0:
        return 0
    if shared == len(forget):
        raise InvalidInputError(f"{other.name} contains every one of the {len(forget)} {forget.name} samples; {advice}")
    warnings.warn(f"{other.name} contains {shared} of the {len(forget)} {forget.name} samples (identical inputs); "
                  f"{advice}", UserWarning, stacklevel=3)
    return shared
