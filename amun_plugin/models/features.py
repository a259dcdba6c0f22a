"""Penultimate-layer activations of any classifier (built-in or user-supplied)."""

from __future__ import annotations

from torch import Tensor, nn

from amun_plugin.errors import InvalidInputError

__all__ = ["penultimate_features"]

_NAMES_SHOWN = 12


def penultimate_features(model: nn.Module, x: Tensor, layer: str | None = None) -> Tensor:
    """Activations (N, D) of ``model`` on ``x`` (N, ...) at its penultimate layer.

    With ``layer=None`` the model's own ``features(x)`` method is used (every built-in model has
    one). With ``layer`` set (a name from ``model.named_modules()``, e.g. ``"fc.1"``), a forward
    hook captures that submodule's output during a full forward pass, flattened to (N, D).

    The model's mode and autograd are left as the caller set them (gradients flow through the
    result unless the caller runs this under ``torch.no_grad``).

    Raises :class:`InvalidInputError` if ``layer`` is not a submodule name, if the model has no
    ``features`` method and no ``layer`` was given, or if the hooked output is not a tensor.
    """
    if layer is None:
        features = getattr(model, "features", None)
        if callable(features) and not isinstance(features, nn.Module):
            return _flat(features(x), "features()")
        raise InvalidInputError(
            f"{type(model).__name__} has no features(x) method; pass layer=<submodule name> to hook "
            f"the penultimate layer, one of: {_some_names(model)}"
        )
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        raise InvalidInputError(
            f"{type(model).__name__} has no submodule named {layer!r}; valid names include: {_some_names(model)}"
        )
    captured: list[object] = []

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        captured.append(output)

    handle = modules[layer].register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    if not captured:
        raise InvalidInputError(f"submodule {layer!r} was not called during the forward pass; choose another layer")
    return _flat(captured[-1], f"submodule {layer!r}")


def _flat(output: object, source: str) -> Tensor:
    if not isinstance(output, Tensor) or output.ndim < 1:
        raise InvalidInputError(f"{source} returned {type(output).__name__}, expected a tensor of shape (N, ...)")
    return output.flatten(1) if output.ndim > 1 else output.unsqueeze(1)


def _some_names(model: nn.Module) -> str:
    """The last few submodule names (the penultimate layer is usually near the end)."""
    names = [name for name, _ in model.named_modules() if name]
    if not names:
        return "(the model has no submodules)"
    shown = names[-_NAMES_SHOWN:]
    prefix = "..., " if len(names) > len(shown) else ""
    return prefix + ", ".join(repr(n) for n in shown)
