"""Model registry, backbones, heads and wrappers."""

from osteon.models import zoo as _zoo  # noqa: F401  (registers the curated models)
from osteon.models.network import ImageModel, create_model
from osteon.models.registry import MODELS, ModelEntry, Weights, get_model_entry, list_models

__all__ = ["MODELS", "ImageModel", "ModelEntry", "Weights", "create_model", "get_model_entry", "list_models"]
