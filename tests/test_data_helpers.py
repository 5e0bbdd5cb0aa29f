"""Tests of the reading helpers shared by the loaders, and of loader determinism."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minirec.data.dataset import check_file, iter_lines, parse_numbers
from minirec.data.movielens import movielens_click_task

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def test_iter_lines_strips_only_the_terminator(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"a\tb\t\t\r\nc\t\n\nd\r\n\n\n")
    assert list(iter_lines(path)) == [(1, "a\tb\t\t"), (2, "c\t"), (3, ""), (4, "d")]


def test_iter_lines_reports_bad_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid utf-8 text"):
        list(iter_lines(path))
    assert list(iter_lines(path, encoding="latin-1")) == [(1, "café")]


@pytest.mark.parametrize("text", [" 12", "12 ", "1_000", "１２", "1.0", "", "0x1f"])
def test_parse_numbers_rejects_loose_integers(text):
    with pytest.raises(ValueError, match=r"f.txt, line 8, column 'count': invalid value"):
        parse_numbers(["1", text], "int", path="f.txt", line_numbers=[7, 8], column="count")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "4,5", "1_0"])
def test_parse_numbers_rejects_non_finite_floats(text):
    with pytest.raises(ValueError, match=r"line 3, column 'rating'"):
        parse_numbers([text], "float", path="f.txt", line_numbers=[3], column="rating")


def test_parse_numbers_values():
    ints = parse_numbers(["+3", "-2", "0", "9223372036854775807"], "int", path="f",
                         line_numbers=[1, 2, 3, 4], column="c")
    assert ints.dtype == np.int64
    assert ints.tolist() == [3, -2, 0, 2 ** 63 - 1]
    with pytest.raises(ValueError, match="line 1, column 'c'"):
        parse_numbers(["9223372036854775808"], "int", path="f", line_numbers=[1], column="c")
    floats = parse_numbers(["4", "3.5", ".5", "1e2"], "float", path="f",
                           line_numbers=[1, 2, 3, 4], column="c")
    assert floats.tolist() == [4.0, 3.5, 0.5, 100.0]
    assert parse_numbers([], "int", path="f", line_numbers=[], column="c").shape == (0,)


def test_check_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train: file not found"):
        check_file(tmp_path / "absent", argument="train")
    with pytest.raises(ValueError, match="expected a file, got the folder"):
        check_file(tmp_path)


def test_select_keeps_info():
    task = movielens_click_task(FIXTURES / "ml-latest-small", max_history=2)
    selected = task.select(["user_id", "movie_id"])
    assert selected.info == task.info
    assert selected.schema.batch_keys() == ["user_id", "movie_id"]
    assert selected.vocabularies is task.vocabularies


_DIGEST_SCRIPT = """
import hashlib, sys
from minirec.data.criteo import load_criteo
from minirec.data.libfm import load_libfm
from minirec.data.movielens import movielens_click_task
fixtures = sys.argv[1]
digest = hashlib.sha256()
tasks = [movielens_click_task(fixtures + "/ml-latest-small", max_history=4),
         movielens_click_task(fixtures + "/ml-100k", max_history=4),
         load_criteo(fixtures + "/criteo/train.txt", random_state=2),
         load_libfm(fixtures + "/libfm/tag.train.libfm", random_state=2)]
for task in tasks:
    for dataset in (task.train, task.valid, task.test):
        for key in sorted(dataset.columns):
            digest.update(key.encode())
            digest.update(dataset.columns[key].tobytes())
        digest.update(dataset.labels.tobytes())
print(digest.hexdigest())
"""


def _digest(seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, str(FIXTURES)], env=env,
                            check=True, capture_output=True, text=True, cwd=REPO)
    return result.stdout.strip()


def test_loaders_independent_of_pythonhashseed():
    first, second = _digest("3"), _digest("4711")
    assert len(first) == 64
    assert first == second


def test_digest_changes_with_the_data():
    # Guards the comparison above: a different seed of the random split changes the digest.
    script = _DIGEST_SCRIPT.replace("random_state=2", "random_state=5")
    env = dict(os.environ, PYTHONHASHSEED="3", PYTHONPATH=str(REPO))
    other = subprocess.run([sys.executable, "-c", script, str(FIXTURES)], env=env, check=True,
                           capture_output=True, text=True, cwd=REPO).stdout.strip()
    assert other != _digest("3")
