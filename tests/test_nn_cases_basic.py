"""Every case of minirec.nn.cases_basic passes the gradient check."""

import numpy as np
import pytest

from minirec.gradcheck import check_gradients
from minirec.nn.cases_basic import gradcheck_cases

TOLERANCE = 1e-6
CASES = gradcheck_cases()


def test_case_names_are_unique():
    names = [name for name, _, _, _ in CASES]
    assert len(names) == len(set(names))


def test_cases_cover_basic_components():
    components = {type(module).__name__ for _, module, _, _ in CASES}
    expected = {"Embedding", "EmbeddingBag", "FieldEmbedding", "Linear", "MLP", "ReLU",
                "Sigmoid", "Tanh", "PReLU", "Dice", "Dropout", "BCELossCheck", "MSELossCheck"}
    assert expected <= components
    activations = {name for name, _, _, _ in CASES if name.startswith("MLP(")}
    assert activations == {"MLP(relu)", "MLP(tanh)", "MLP(sigmoid)", "MLP(prelu)", "MLP(dice)"}


def test_cases_are_float64():
    for name, module, inputs, _ in CASES:
        for param_name, value, _ in module.parameters():
            assert value.dtype == np.float64, (name, param_name)


def test_cases_are_reproducible():
    first, second = gradcheck_cases(), gradcheck_cases()
    for (name, module_a, _, _), (_, module_b, _, _) in zip(first, second):
        for (_, a, _), (_, b, _) in zip(module_a.parameters(), module_b.parameters()):
            np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("name, module, inputs, kwargs", CASES,
                         ids=[case[0] for case in CASES])
def test_case_passes_gradcheck(name, module, inputs, kwargs):
    result = check_gradients(module, inputs, name=name, **kwargs)
    assert result.name == name
    assert result.checked > 0
    assert result.passed(TOLERANCE), result


def test_dice_training_case_is_in_training_mode():
    modules = {name: module for name, module, _, _ in CASES}
    assert modules["Dice(training)"].training
    assert not modules["Dice(evaluation)"].training
    assert modules["Dropout(p=0.3)"].training
