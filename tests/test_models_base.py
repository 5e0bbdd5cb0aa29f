"""Tests of the checks every model inherits from the Model base class."""

import numpy as np
import pytest

from minirec.models.base import get_model_class
from minirec.models.cases_fm_family import tiny_batch, tiny_schema
from minirec.models.deepfm import DeepFM


def test_backward_before_forward_raises():
    model = DeepFM(tiny_schema(), embedding_dim=2, hidden=(3,), random_state=0)
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones(3))


@pytest.mark.parametrize("shape", [(5,), (3, 1), ()])
def test_backward_rejects_wrong_shape(shape):
    model = DeepFM(tiny_schema(), embedding_dim=2, hidden=(3,), random_state=0)
    model.forward(tiny_batch())
    with pytest.raises(ValueError, match=r"dlogits must have the logits' shape \(3,\)"):
        model.backward(np.ones(shape))


def test_backward_accepts_matching_shape():
    model = DeepFM(tiny_schema(), embedding_dim=2, hidden=(3,), random_state=0)
    model.forward(tiny_batch())
    grads = model.backward(np.ones(3))
    assert set(grads) == {"price"}
    assert grads["price"].shape == (3,)


def test_unknown_model_name_lists_choices():
    with pytest.raises(ValueError, match="unknown model 'xgboost'.*deepfm"):
        get_model_class("xgboost")
