"""Model architectures (ResNet-18 CIFAR variant, small ResNet, CNN, MLP), safe checkpoints,
penultimate features and inference helpers."""

from amun_plugin.models.base import ModelArchitecture
from amun_plugin.models.checkpoint import (
    CheckpointMetadata,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    sidecar_path,
)
from amun_plugin.models.cnn import CNN, CNNConfig
from amun_plugin.models.features import penultimate_features
from amun_plugin.models.imported import ImportedModel, ImportedModelConfig
from amun_plugin.models.inference import accuracy, build_model, predict_logits
from amun_plugin.models.layers import Normalize
from amun_plugin.models.mlp import MLP, MLPConfig
from amun_plugin.models.resnet import ResNet18, ResNet18Config, SmallResNet, SmallResNetConfig

BUILTIN_ARCHITECTURES: tuple[type[ModelArchitecture], ...] = (ResNet18, SmallResNet, CNN, MLP, ImportedModel)
"""The architectures amun_plugin registers through its own ``amun_register_models`` hook."""

__all__ = [
    "BUILTIN_ARCHITECTURES",
    "CNN",
    "CNNConfig",
    "CheckpointMetadata",
    "ImportedModel",
    "ImportedModelConfig",
    "MLP",
    "MLPConfig",
    "ModelArchitecture",
    "Normalize",
    "ResNet18",
    "ResNet18Config",
    "SmallResNet",
    "SmallResNetConfig",
    "accuracy",
    "build_model",
    "load_checkpoint",
    "penultimate_features",
    "predict_logits",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "sidecar_path",
]
