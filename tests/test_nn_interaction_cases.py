"""The gradient-check cases of the interaction and attention components all pass."""

import numpy as np
import pytest

from minirec.gradcheck import check_gradients
from minirec.nn.afm_attention import AFMAttention
from minirec.nn.cases_interaction import gradcheck_cases
from minirec.nn.din_attention import DINAttention
from minirec.nn.fm import FactorizationMachine, FMInteraction
from minirec.nn.pairwise import BiInteraction, PairwiseProducts

CASES = gradcheck_cases()


def test_cases_cover_every_component():
    classes = {type(module) for _, module, _, _ in CASES}
    assert classes == {FMInteraction, FactorizationMachine, PairwiseProducts, BiInteraction,
                       AFMAttention, DINAttention}
    din_modes = {(module.normalize, module.unit.layers[1].__class__.__name__)
                 for _, module, _, _ in CASES if isinstance(module, DINAttention)}
    assert {normalize for normalize, _ in din_modes} == {False, True}


def test_case_names_unique():
    names = [name for name, _, _, _ in CASES]
    assert len(names) == len(set(names))


def test_din_cases_include_padding_and_empty_rows():
    din_lengths = [(inputs[2], inputs[1].shape[1]) for _, module, inputs, _ in CASES
                   if isinstance(module, DINAttention)]
    for lengths, T in din_lengths:
        assert np.any(lengths == 0)
    assert any(np.any((lengths > 0) & (lengths < T)) for lengths, T in din_lengths)
    assert any(np.all(lengths == 0) for lengths, _ in din_lengths)


@pytest.mark.parametrize("name, module, inputs, kwargs", CASES, ids=[c[0] for c in CASES])
def test_case_passes_gradcheck(name, module, inputs, kwargs):
    for input_value in inputs:
        if isinstance(input_value, np.ndarray) and input_value.dtype.kind == "f":
            assert input_value.dtype == np.float64
    result = check_gradients(module, inputs, name=name, **kwargs)
    assert result.checked > 0
    assert result.passed(1e-6), result


def test_cases_are_reproducible():
    first, second = gradcheck_cases(), gradcheck_cases()
    for (name, module_a, inputs_a, _), (_, module_b, inputs_b, _) in zip(first, second):
        for value_a, value_b in zip(inputs_a, inputs_b):
            np.testing.assert_array_equal(value_a, value_b, err_msg=name)
        state_a, state_b = module_a.state_dict(), module_b.state_dict()
        for key in state_a:
            np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=name)
