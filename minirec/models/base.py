"""Base class and registry of the CTR models."""

from __future__ import annotations

import importlib

import numpy as np

from ..data.schema import Schema
from ..nn.activations import sigmoid
from ..nn.base import Module, check_dtype

# Command-line name -> (module, class). Modules are imported on first use.
MODEL_MODULES = {
    "fm": ("minirec.models.fm", "FM"),
    "fnn": ("minirec.models.fnn", "FNN"),
    "deepfm": ("minirec.models.deepfm", "DeepFM"),
    "wide-deep": ("minirec.models.wide_deep", "WideDeep"),
    "deep-crossing": ("minirec.models.deep_crossing", "DeepCrossing"),
    "nfm": ("minirec.models.nfm", "NFM"),
    "afm": ("minirec.models.afm", "AFM"),
    "din": ("minirec.models.din", "DIN"),
    "din-base": ("minirec.models.din", "DINBase"),
    "mlp": ("minirec.models.mlp", "MLPModel"),
}


def get_model_class(name: str):
    """Return the model class registered under ``name`` (``fm``, ``deepfm``, ``din``, ...)."""
    if name not in MODEL_MODULES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_MODULES)}")
    module_name, class_name = MODEL_MODULES[name]
    return getattr(importlib.import_module(module_name), class_name)


class Model(Module):
    """A CTR model: a batch dict of named fields in, logits of shape ``(B,)`` out.

    Subclasses set ``name`` (the registry key), store the keyword arguments they were built
    with in ``self.config`` (JSON-ready, so a checkpoint can rebuild the model), and
    implement ``_forward(batch)`` and ``_backward(dlogits)``. ``forward`` validates the batch
    against the schema first, so a missing or extra field, a wrong dtype or shape, or an id
    outside its vocabulary raises ValueError before any arithmetic. ``backward`` checks that
    a forward pass came first and that ``dlogits`` has the logits' shape ``(B,)``.
    """

    name = "model"

    def __init__(self, schema: Schema, *, dtype=np.float64, **config):
        super().__init__()
        if not isinstance(schema, Schema):
            raise TypeError(f"schema must be a minirec Schema, got {type(schema).__name__}")
        self.schema = schema
        self.dtype = check_dtype(dtype)
        self.config = {"dtype": self.dtype.name, **config}

    def forward(self, batch) -> np.ndarray:
        B = self.schema.validate_batch(batch)
        logits = self._forward(batch)                                  # (B,)
        self._batch_size = B
        return logits

    def backward(self, dlogits) -> dict:
        """Backpropagate ``dlogits`` (B,); return the gradients of the dense input fields."""
        B = getattr(self, "_batch_size", None)
        if B is None:
            raise RuntimeError(f"{type(self).__name__}.backward was called before forward")
        dlogits = np.asarray(dlogits)
        if dlogits.shape != (B,):
            raise ValueError(
                f"dlogits must have the logits' shape ({B},), got {dlogits.shape}"
            )
        return self._backward(dlogits)

    def _forward(self, batch) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, dlogits) -> dict:
        raise NotImplementedError

    def predict_proba(self, batch) -> np.ndarray:
        """Return click probabilities ``sigmoid(logits)`` in evaluation mode."""
        was_training = self.training
        self.eval()
        try:
            return sigmoid(self.forward(batch))
        finally:
            if was_training:
                self.train()
