"""Tests of the libFM reader and task: label mapping, fields by position, splits, bad lines."""

from pathlib import Path

import numpy as np
import pytest

from minirec.data.libfm import load_libfm, read_libfm
from minirec.data.vocab import UNK

LIBFM = Path(__file__).parent / "fixtures" / "libfm"
TRAIN = LIBFM / "frappe.train.libfm"
VALID = LIBFM / "frappe.validation.libfm"
TEST = LIBFM / "frappe.test.libfm"
TAG = LIBFM / "tag.train.libfm"       # 20 lines, labels 1/0, 3 fields


def test_plus_minus_one_labels():
    table = read_libfm(TRAIN)
    # +1 -1 -1 +1 -1 +1
    assert table.labels.tolist() == [1, 0, 0, 1, 0, 1]
    assert table.indices[0].tolist() == [12, 130, 402, 5001]
    assert table.lines.tolist() == [1, 2, 3, 4, 5, 6]


def test_one_zero_labels():
    table = read_libfm(TAG)
    # line i (from 0) has label 1 when i % 3 == 0
    assert table.labels.tolist() == [1.0 if i % 3 == 0 else 0.0 for i in range(20)]


def test_regression_keeps_float_labels(tmp_path):
    path = tmp_path / "ratings.libfm"
    path.write_text("3.5 1:1 7:1\n-1 2:1 7:1\n5 1:1 8:1\n")
    assert read_libfm(path, task="regression").labels.tolist() == [3.5, -1.0, 5.0]
    with pytest.raises(ValueError, match=r"ratings.libfm, line 1, column 'label': invalid "
                                         r"value '3.5'; expected 1, \+1, 0 or -1"):
        read_libfm(path)
    task = load_libfm(path, path, path, task="regression")
    assert task.test.labels.tolist() == [3.5, -1.0, 5.0]


def test_fields_by_position_and_train_vocabularies():
    task = load_libfm(TRAIN, VALID, TEST)
    assert [f.name for f in task.schema] == ["f0", "f1", "f2", "f3"]
    assert {f.kind for f in task.schema} == {"sparse"}
    # f0 in train: 12 three times, 13 twice, 14 once -> ids 2, 3, 4.
    assert task.vocabularies["f0"].values.tolist() == ["12", "13", "14"]
    assert task.schema["f0"].vocab_size == 5
    assert task.train.columns["f0"].tolist() == [2, 2, 3, 4, 2, 3]
    # Test f0 = 13, 12, 16; 16 never occurs in train.
    assert task.test.columns["f0"].tolist() == [3, 2, UNK]
    # Validation f3 = 5001, 5009: 5009 is unknown.
    assert task.valid.columns["f3"].tolist() == [task.vocabularies["f3"].encode([5001])[0],
                                                 UNK]
    assert task.valid.labels.tolist() == [1, 0]
    assert task.info["num_fields"] == 4


def test_missing_valid_and_test_are_cut_from_train():
    task = load_libfm(TAG, random_state=3)
    # 20 rows: floor(20 * 0.1) = 2 validation, 2 test, 16 train.
    assert (len(task.train), len(task.valid), len(task.test)) == (16, 2, 2)
    again = load_libfm(TAG, random_state=3)
    for name in ("train", "valid", "test"):
        for key in ("f0", "f1", "f2"):
            assert np.array_equal(getattr(task, name).columns[key],
                                  getattr(again, name).columns[key])
    # The documented split draws a permutation from the seed. Validation takes its first
    # floor(n * 0.1) rows and test the next ones, and each split keeps file order.
    table = read_libfm(TAG)
    order = np.random.default_rng(3).permutation(20)
    parts = {"valid": np.sort(order[:2]), "test": np.sort(order[2:4]),
             "train": np.sort(order[4:])}
    for name, rows in parts.items():
        dataset = getattr(task, name)
        assert np.array_equal(dataset.labels, table.labels[rows]), name
        for j in range(3):
            expected = task.vocabularies[f"f{j}"].encode(table.indices[rows, j])
            assert np.array_equal(dataset.columns[f"f{j}"], expected), (name, j)
    assert set(task.vocabularies["f0"].values.tolist()) == set(
        table.indices[parts["train"], 0].astype(str).tolist())


def test_only_test_missing():
    task = load_libfm(TAG, valid=TAG, random_state=0)
    assert (len(task.train), len(task.valid), len(task.test)) == (18, 20, 2)


@pytest.mark.parametrize("text, pattern", [
    ("1 1:1 2:1\n0 1:1\n", r"line 2: expected 2 idx:val pairs like the first line, found 1"),
    ("1 1:1 2:1\n0 1:1 2:0.5\n", r"line 2, column 'f1': invalid value '2:0.5'; expected the "
                                 r"value 1"),
    ("1 1:1 2:1\n0 1:1 2\n", r"line 2, column 'f1': invalid value '2'; expected a pair"),
    ("1 1:1 2:1\n0 -4:1 2:1\n", r"line 2, column 'f0': invalid value '-4:1'"),
    ("1 1:1 2:1\n0 a:1 2:1\n", r"line 2, column 'f0': invalid value 'a'"),
    ("1 1:1 2:1\n2 1:1 2:1\n", r"line 2, column 'label': invalid value '2'"),
    ("1 1:1 2:1\n\n0 1:1 2:1\n", r"line 2: empty line"),
    ("1\n", r"line 1: no idx:val pairs"),
    ("", r"is empty: no data lines found"),
])
def test_bad_lines(tmp_path, text, pattern):
    path = tmp_path / "bad.libfm"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern):
        read_libfm(path)


def test_other_files_must_match_the_number_of_fields(tmp_path):
    path = tmp_path / "valid.libfm"
    path.write_text("1 12:1 130:1 402:1 5001:1\n0 12:1 130:1 402:1\n")
    with pytest.raises(ValueError, match=r"valid.libfm, line 2: expected 4 idx:val pairs"):
        load_libfm(TRAIN, path, TEST)


def test_missing_file_and_bad_task():
    with pytest.raises(FileNotFoundError, match="file not found"):
        load_libfm(LIBFM / "absent.libfm")
    with pytest.raises(ValueError, match="task must be one of classification, regression"):
        load_libfm(TRAIN, task="ranking")


def test_unusual_spellings_read_like_plain_ones(tmp_path):
    plain = tmp_path / "plain.libfm"
    plain.write_text("+1 3:1 40:1\n-1 5:1 41:1\n")
    unusual = tmp_path / "unusual.libfm"
    unusual.write_text(" 1\t3:1e0   40:1.000\n-1.0 5:01 41:1.\n")
    a, b = read_libfm(plain), read_libfm(unusual)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.indices, b.indices)
    assert b.indices.tolist() == [[3, 40], [5, 41]]
