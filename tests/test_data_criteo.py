"""Tests of the Criteo reader and task: layouts, empty fields, line ends, bad lines, splits."""

import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from minirec.data.criteo import (CATEGORY_NAMES, COUNT_NAMES, criteo_schema, encode_criteo,
                                 load_criteo, log_counts, read_criteo)
from minirec.data.vocab import UNK, HashedVocabulary

CRITEO = Path(__file__).parent / "fixtures" / "criteo"
TXT = CRITEO / "train.txt"          # 12 labelled rows, tab-separated, \r\n line ends
CSV = CRITEO / "train.csv"          # the first 6 rows of train.txt, with a header
TEST = CRITEO / "test.txt"          # rows 7 to 9 of train.txt without their label


def test_read_tab_file_with_crlf():
    assert TXT.read_bytes().count(b"\r\n") == 12       # the fixture kept its line ends
    table = read_criteo(TXT)
    assert len(table) == 12
    assert table.labels.tolist() == [0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]
    assert table.lines.tolist() == list(range(1, 13))
    # Line 1 ends with two empty fields (C25, C26) and then \r\n: both fields survive.
    assert table.categories[0, 24] == ""
    assert table.categories[0, 25] == ""
    assert table.categories[0, 23] == "a6c2c2a1"
    # Line 2 ends "...\ta54616cf\r\n": the \r is not part of C26.
    assert table.categories[1, 25] == "a54616cf"
    # Line 1 counts: 3, -1, (empty), 0, 1382, ...
    assert table.counts[0, :5].tolist() == [3, -1, 0, 0, 1382]
    assert table.count_missing[0, :5].tolist() == [False, False, True, False, False]
    assert table.count_missing[1].all()


def test_dense_values_are_log1p_of_clipped_counts():
    columns = encode_criteo(read_criteo(TXT), {name: HashedVocabulary(5) for name in
                                               CATEGORY_NAMES})
    # Line 1: I1 = 3 -> log(4); I2 = -1 -> log1p(0) = 0; I3 empty -> 0; I4 = 0 -> 0;
    # I5 = 1382 -> log(1383) = 7.2320...
    assert columns["I1"][0] == pytest.approx(math.log(4))
    assert columns["I2"][0] == 0.0
    assert columns["I3"][0] == 0.0
    assert columns["I4"][0] == 0.0
    assert columns["I5"][0] == pytest.approx(7.232010, abs=1e-6)
    # Line 4: I2 = -2 -> 0.
    assert columns["I2"][3] == 0.0
    assert columns["I1"].dtype == np.float64


def test_log_counts_hand_values():
    counts = np.array([[-5, 0, 1, 9]])
    missing = np.array([[False, False, False, True]])
    # max(-5, 0) = 0 -> 0; 0 -> 0; log1p(1) = log 2; missing -> 0
    assert log_counts(counts, missing).tolist() == [[0.0, 0.0, math.log(2), 0.0]]
    assert log_counts(np.array([3]))[0] == pytest.approx(math.log(4))


def test_csv_with_header_matches_tab_file():
    tab = read_criteo(TXT)
    comma = read_criteo(CSV)
    assert len(comma) == 6
    assert comma.lines.tolist() == [2, 3, 4, 5, 6, 7]        # line 1 is the header
    assert np.array_equal(comma.labels, tab.labels[:6])
    assert np.array_equal(comma.counts, tab.counts[:6])
    assert np.array_equal(comma.count_missing, tab.count_missing[:6])
    assert np.array_equal(comma.categories, tab.categories[:6])


def test_unlabelled_test_file():
    table = read_criteo(TEST)
    tab = read_criteo(TXT)
    assert table.labels is None
    assert np.array_equal(table.counts, tab.counts[6:9])
    assert np.array_equal(table.categories, tab.categories[6:9])
    assert (table.categories[2, 10:] == "").all()         # 16 trailing empty fields
    with pytest.raises(ValueError, match="no label column"):
        load_criteo(TEST)


def test_encode_test_file_with_train_vocabularies():
    task = load_criteo(TXT, valid_fraction=0.25, test_fraction=0.25)
    columns = encode_criteo(read_criteo(TEST), task.vocabularies)
    assert criteo_schema(task.vocabularies).validate_batch(columns) == 3
    assert columns["C11"][2] == UNK


def test_max_rows():
    assert len(read_criteo(TXT, max_rows=5)) == 5
    assert read_criteo(TXT, max_rows=5).labels.tolist() == [0, 1, 0, 0, 1]
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        read_criteo(TXT, max_rows=0)


def test_load_split_sizes_and_determinism():
    # 12 rows: floor(12 * 0.25) = 3 test, 3 valid, 6 train.
    task = load_criteo(TXT, valid_fraction=0.25, test_fraction=0.25, random_state=4)
    assert (len(task.train), len(task.valid), len(task.test)) == (6, 3, 3)
    assert [f.name for f in task.schema] == list(COUNT_NAMES + CATEGORY_NAMES)
    assert [f.kind for f in task.schema][:13] == ["dense"] * 13
    assert [f.kind for f in task.schema][13:] == ["sparse"] * 26
    again = load_criteo(TXT, valid_fraction=0.25, test_fraction=0.25, random_state=4)
    for name in ("train", "valid", "test"):
        for key, column in getattr(task, name).columns.items():
            assert np.array_equal(column, getattr(again, name).columns[key])
    # The documented split draws a permutation from the seed. Its first
    # floor(n * test_fraction) rows go to test and the next floor(n * valid_fraction) to
    # validation, and each split keeps file order.
    order = np.random.default_rng(4).permutation(12)
    dense = log_counts(read_criteo(TXT).counts, read_criteo(TXT).count_missing)
    assert np.array_equal(task.test.columns["I5"], dense[np.sort(order[:3]), 4])
    assert np.array_equal(task.valid.columns["I5"], dense[np.sort(order[3:6]), 4])
    assert np.array_equal(task.train.columns["I5"], dense[np.sort(order[6:]), 4])


def test_vocabularies_from_train_rows_only():
    task = load_criteo(TXT, valid_fraction=0.25, test_fraction=0.25, random_state=1)
    table = read_criteo(TXT)
    order = np.random.default_rng(1).permutation(12)
    train_rows = np.sort(order[6:])
    held_out_rows = np.r_[np.sort(order[3:6]), np.sort(order[:3])]      # valid, then test
    unseen = 0
    for j, name in enumerate(CATEGORY_NAMES):
        vocabulary = task.vocabularies[name]
        train_values = table.categories[train_rows, j]
        known = set(train_values[train_values != ""].tolist())
        assert set(vocabulary.values.tolist()) == known
        assert vocabulary.counts.sum() == int((train_values != "").sum())
        held_out_ids = np.r_[task.valid.columns[name], task.test.columns[name]]
        for value, i in zip(table.categories[held_out_rows, j].tolist(), held_out_ids):
            if value in known:
                assert i == vocabulary.encode([value])[0]
            else:
                assert i == UNK
                unseen += value != ""
    assert unseen > 0          # the fixture has held-out values never seen in training


def test_min_count_makes_rare_values_unknown():
    task = load_criteo(TXT, valid_fraction=0.0, test_fraction=0.0, min_count=5)
    table = read_criteo(TXT)
    for j, name in enumerate(CATEGORY_NAMES):
        values, counts = np.unique(table.categories[:, j][table.categories[:, j] != ""],
                                   return_counts=True)
        assert set(task.vocabularies[name].values.tolist()) == set(values[counts >= 5].tolist())


def test_hashed_categories():
    task = load_criteo(CSV, valid_fraction=0.2, test_fraction=0.2, num_buckets=10)
    assert task.schema["C1"].vocab_size == 12
    table = read_criteo(CSV)
    everything = load_criteo(CSV, valid_fraction=0.0, test_fraction=0.0, num_buckets=10)
    value = table.categories[0, 0]
    assert everything.train.columns["C1"][0] == 2 + zlib.crc32(value.encode()) % 10
    assert everything.train.columns["C26"][0] == UNK      # empty trailing field
    with pytest.raises(ValueError, match="cannot be combined with num_buckets"):
        load_criteo(CSV, num_buckets=10, min_count=2)


def test_invalid_options():
    with pytest.raises(ValueError, match="valid_fraction must be a number in"):
        load_criteo(TXT, valid_fraction=1.0)
    with pytest.raises(ValueError, match="must be below 1"):
        load_criteo(TXT, valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(FileNotFoundError, match="file not found"):
        load_criteo(CRITEO / "absent.txt")
    with pytest.raises(ValueError, match="expected a file"):
        read_criteo(CRITEO)


def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode().split("\r\n")[:-1]


def _write(tmp_path, lines: list[str], name="bad.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_lines_raise_with_line_numbers(tmp_path):
    good = _lines(TXT)

    short = good[:2] + [good[2].rsplit("\t", 1)[0]] + good[3:]
    with pytest.raises(ValueError, match=r"bad.txt, line 3: expected 40 columns like line 1, "
                                         r"found 39"):
        read_criteo(_write(tmp_path, short))

    label = good[:3] + ["2" + good[3][1:]]
    with pytest.raises(ValueError, match=r"line 4, column 'label': invalid value '2'; "
                                         r"expected 0 or 1"):
        read_criteo(_write(tmp_path, label))

    fields = good[1].split("\t")
    fields[3] = "1.5"                                  # I3
    with pytest.raises(ValueError, match=r"line 2, column 'I3': invalid value '1.5'"):
        read_criteo(_write(tmp_path, [good[0], "\t".join(fields)]))

    with pytest.raises(ValueError, match=r"line 1: expected 40 columns .* or 39 .*found 3"):
        read_criteo(_write(tmp_path, ["1\t2\t3"]))

    with pytest.raises(ValueError, match=r"line 2: expected 40 columns like line 1, found 1"):
        read_criteo(_write(tmp_path, [good[0], "", good[1]]))

    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty: no data lines found"):
        read_criteo(tmp_path / "empty.txt")


def test_bad_header_raises(tmp_path):
    header, *rows = CSV.read_text().splitlines()
    without_c26 = header.rsplit(",", 1)[0]
    with pytest.raises(ValueError, match=r"line 1: the header lacks column\(s\) \['C26'\]"):
        read_criteo(_write(tmp_path, [without_c26], "bad.csv"))
    extra = header + ",C27"
    with pytest.raises(ValueError, match=r"unexpected column 'C27'"):
        read_criteo(_write(tmp_path, [extra], "bad.csv"))
    with_id = "Id," + header
    table = read_criteo(_write(tmp_path, [with_id] + [f"{i}," + r for i, r in enumerate(rows)],
                               "id.csv"))
    assert np.array_equal(table.categories, read_criteo(CSV).categories)
    rows[2] = rows[2] + ",extra"
    with pytest.raises(ValueError, match=r"bad.csv, line 4: expected 40 columns like line 1"):
        read_criteo(_write(tmp_path, [header] + rows, "bad.csv"))


def test_invalid_utf8_raises(tmp_path):
    header = CSV.read_bytes().split(b"\n")[0]
    path = tmp_path / "latin.csv"
    path.write_bytes(header + b"\n0" + b",1" * 13 + b",caf\xe9" * 26 + b"\n")
    with pytest.raises(ValueError, match="not valid utf-8 text"):
        read_criteo(path)
    path = tmp_path / "latin.txt"
    path.write_bytes(b"0" + b"\t1" * 13 + b"\tcaf\xe9" * 26 + b"\n")
    with pytest.raises(ValueError, match="not valid utf-8 text"):
        read_criteo(path)
