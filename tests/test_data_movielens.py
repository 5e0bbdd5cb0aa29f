"""Tests of the MovieLens readers, the temporal split, the histories and the click task."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from minirec.data.movielens import (TEST, TRAIN, VALID, detect_format, history_matrix,
                                    load_movielens, movielens_click_task, temporal_split)
from minirec.data.vocab import PAD, UNK

FIXTURES = Path(__file__).parent / "fixtures"
LATEST = FIXTURES / "ml-latest-small"


# --- reading the three layouts ---------------------------------------------------------

def test_detect_format():
    assert detect_format(FIXTURES / "ml-100k") == "ml-100k"
    assert detect_format(FIXTURES / "ml-1m") == "ml-1m"
    assert detect_format(LATEST) == "ml-latest"


def test_missing_or_unrecognised_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        detect_format(tmp_path / "absent")
    (tmp_path / "u.data").write_text("1\t1\t5\t1\n")
    with pytest.raises(ValueError) as error:
        detect_format(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "ml-100k needs u.data, u.item, u.user" in message
    assert "ml-latest needs ratings.csv, movies.csv" in message
    with pytest.raises(ValueError, match="expected a MovieLens folder"):
        detect_format(tmp_path / "u.data")


def test_read_latest_quoted_titles():
    data = load_movielens(LATEST)
    movies = data.movies
    titles = dict(zip(movies["movie_id"].tolist(), movies["title"].tolist()))
    assert titles[2] == "Cats, Dogs and Rain (1999)"
    assert titles[3] == 'Rêves d\'été, "Part Two" (2003)'
    genres = dict(zip(movies["movie_id"].tolist(), movies["genres"].tolist()))
    assert genres[2] == ("Comedy", "Drama")
    assert genres[26] == ()                        # "(no genres listed)"
    assert data.users is None
    assert len(data.ratings["user_id"]) == 46
    assert set(data.ratings["rating"].tolist()) >= {0.5, 3.5, 5.0}


def test_read_100k_latin1_and_flags():
    data = load_movielens(FIXTURES / "ml-100k")
    titles = dict(zip(data.movies["movie_id"].tolist(), data.movies["title"].tolist()))
    assert titles[3] == "Misérables, Les (1995)"
    genres = dict(zip(data.movies["movie_id"].tolist(), data.movies["genres"].tolist()))
    assert genres[1] == ("Animation", "Children's", "Comedy")
    assert genres[3] == ("Drama", "Romance")
    assert genres[4] == ("unknown",)
    assert data.users["gender"].tolist() == ["M", "F", "M"]
    assert data.users["occupation"].tolist() == ["technician", "other", "writer"]
    assert data.ratings["rating"].tolist()[:2] == [4.0, 5.0]


def test_read_1m():
    data = load_movielens(FIXTURES / "ml-1m")
    titles = dict(zip(data.movies["movie_id"].tolist(), data.movies["title"].tolist()))
    assert titles[914] == "Café Society Blues (1964)"
    genres = dict(zip(data.movies["movie_id"].tolist(), data.movies["genres"].tolist()))
    assert genres[661] == ("Animation", "Children's", "Musical")
    assert data.users["age"].tolist() == ["1", "56", "25"]
    assert data.ratings["timestamp"][0] == 978300760


# --- bad lines -------------------------------------------------------------------------

def _latest_folder(tmp_path, ratings: str, movies: str | None = None) -> Path:
    movies = movies or "movieId,title,genres\n1,A (1990),Drama\n2,\"B, The (1991)\",Comedy\n"
    (tmp_path / "movies.csv").write_text(movies, encoding="utf-8")
    (tmp_path / "ratings.csv").write_text(ratings, encoding="utf-8")
    return tmp_path


HEADER = "userId,movieId,rating,timestamp\n"


@pytest.mark.parametrize("ratings, pattern", [
    (HEADER + "1,1,4.0,10\n1,2,abc,11\n", r"ratings.csv, line 3, column 'rating'.*'abc'"),
    (HEADER + "1,1,4.0,10\n1,2,nan,11\n", r"line 3, column 'rating'.*'nan'"),
    (HEADER + "1,1,7.0,10\n", r"line 2, column 'rating'.*'7.0'.*between 0 and 5"),
    (HEADER + "1,x1,4.0,10\n", r"line 2, column 'movie_id'.*'x1'"),
    (HEADER + "1,1,4.0, 10\n", r"line 2, column 'timestamp'.*' 10'"),
    (HEADER + "1,1,4.0\n", r"line 2: expected 4 comma-separated columns"),
    (HEADER + "1,1,4.0,10\n\n1,2,3.0,12\n", r"line 3: expected 4 comma-separated columns"),
    (HEADER + "1,3,4.0,10\n", r"line 2, column 'movie_id': movie_id 3 does not appear in "
                              r"movies.csv"),
    ("user,movie,rating,time\n1,1,4.0,10\n", r"line 1: expected the header"),
    (HEADER, r"contains no ratings"),
])
def test_latest_bad_lines(tmp_path, ratings, pattern):
    folder = _latest_folder(tmp_path, ratings)
    with pytest.raises(ValueError, match=pattern):
        load_movielens(folder)


def test_trailing_blank_lines_are_accepted(tmp_path):
    folder = _latest_folder(tmp_path, HEADER + "1,1,4.0,10\n1,2,3.0,12\n\n\n")
    assert len(load_movielens(folder).ratings["user_id"]) == 2


def test_duplicate_movie_raises(tmp_path):
    movies = "movieId,title,genres\n1,A (1990),Drama\n1,A again (1990),Drama\n"
    folder = _latest_folder(tmp_path, HEADER + "1,1,4.0,10\n", movies)
    with pytest.raises(ValueError, match=r"movies.csv, line 3, column 'movie_id'"):
        load_movielens(folder)


def test_empty_genre_name_raises(tmp_path):
    movies = "movieId,title,genres\n1,A (1990),Drama||Comedy\n"
    folder = _latest_folder(tmp_path, HEADER + "1,1,4.0,10\n", movies)
    with pytest.raises(ValueError, match=r"line 2, column 'genres'.*'Drama\|\|Comedy'"):
        load_movielens(folder)


def _copy_100k(tmp_path) -> Path:
    for name in ("u.data", "u.item", "u.user"):
        (tmp_path / name).write_bytes((FIXTURES / "ml-100k" / name).read_bytes())
    return tmp_path


def test_100k_bad_lines(tmp_path):
    folder = _copy_100k(tmp_path)
    text = (folder / "u.data").read_text()
    (folder / "u.data").write_text(text + "1\t2\t3\n")
    with pytest.raises(ValueError, match=r"u.data, line 12: expected 4 columns separated "
                                         r"by '\\t'"):
        load_movielens(folder)

    folder = _copy_100k(tmp_path)
    lines = (folder / "u.item").read_bytes().split(b"\n")
    lines[1] = lines[1][:-1] + b"2"                 # the Western flag of movie 2
    (folder / "u.item").write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"u.item, line 2, column 'Western': invalid value "
                                         r"'2'; expected a genre flag 0 or 1"):
        load_movielens(folder)

    folder = _copy_100k(tmp_path)
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|X|other|94043\n")
    with pytest.raises(ValueError, match=r"u.user, line 2, column 'gender'.*'X'; expected M "
                                         r"or F"):
        load_movielens(folder)

    folder = _copy_100k(tmp_path)
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    with pytest.raises(ValueError, match=r"u.data, line 4, column 'user_id': user_id 3 does "
                                         r"not appear in u.user"):
        load_movielens(folder)


# --- the temporal split and the histories ----------------------------------------------

def test_split_rule_hand_computed():
    # User 7: 10 ratings -> test 10 // 5 = 2, valid (10 - 2) // 10 = 0, train 8.
    # User 8: 25 ratings -> test 5, valid (25 - 5) // 10 = 2, train 18.
    # User 9: 1 rating -> test max(1 // 5, 1) = 1, nothing left for train.
    # User 6: 2 ratings -> test 1, valid 1 // 10 = 0, train 1.
    user = np.array([7] * 10 + [8] * 25 + [9] + [6] * 2)
    timestamp = np.r_[np.arange(10), np.arange(25), 0, np.arange(2)]
    shuffle = np.random.default_rng(3).permutation(len(user))
    movie = np.arange(len(user)) + 100
    order, split, rank = temporal_split(user[shuffle], timestamp[shuffle], movie[shuffle])
    sorted_user = user[shuffle][order]
    assert sorted_user.tolist() == [6] * 2 + [7] * 10 + [8] * 25 + [9]
    assert split[sorted_user == 6].tolist() == [TRAIN, TEST]
    assert split[sorted_user == 7].tolist() == [TRAIN] * 8 + [TEST] * 2
    assert split[sorted_user == 8].tolist() == [TRAIN] * 18 + [VALID] * 2 + [TEST] * 5
    assert split[sorted_user == 9].tolist() == [TEST]
    assert rank[sorted_user == 7].tolist() == list(range(10))
    assert np.all(np.diff(timestamp[shuffle][order][sorted_user == 8]) > 0)


def test_split_breaks_time_ties_by_movie_id():
    user = np.array([1, 1, 1, 1, 1])
    timestamp = np.array([5000, 5000, 5000, 5100, 5200])
    movie = np.array([9, 4, 7, 2, 5])
    order, split, _ = temporal_split(user, timestamp, movie)
    assert movie[order].tolist() == [4, 7, 9, 2, 5]
    assert split.tolist() == [TRAIN] * 4 + [TEST]


def test_history_matrix_hand_computed():
    # User A rows 11..15, user B rows 21, 22; max_len 3 keeps the 3 most recent items.
    items = np.array([11, 12, 13, 14, 15, 21, 22])
    rank = np.array([0, 1, 2, 3, 4, 0, 1])
    history, lengths = history_matrix(items, rank, 3)
    assert lengths.tolist() == [0, 1, 2, 3, 3, 0, 1]
    assert history.tolist() == [
        [0, 0, 0], [11, 0, 0], [11, 12, 0], [11, 12, 13], [12, 13, 14],
        [0, 0, 0], [21, 0, 0],
    ]
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        history_matrix(items, rank, 0)


# --- the click task on the ml-latest-small fixture --------------------------------------
# Users in the fixture: 1 rates movies 1..10 in order; 2 rates 1..25 in order; 3 rates
# 9, 4, 7 at the same second, then 2, then 5; 4 rates movie 3 once; 5 rates 1, 2, 3, 26
# (no genres), then 99 (rated by no other user).

@pytest.fixture(scope="module")
def task():
    return movielens_click_task(LATEST, max_history=3)


def _rows(dataset, user):
    return np.flatnonzero(dataset.groups == user)


def _movies(task, dataset, user):
    ids = dataset.columns["movie_id"][_rows(dataset, user)]
    return task.vocabularies["movie_id"].decode(ids).tolist()


def test_task_fields(task):
    schema = task.schema
    assert [f.name for f in schema] == ["user_id", "movie_id", "category", "genres",
                                       "hist_movie_id", "hist_category"]
    assert [f.kind for f in schema] == ["sparse", "sparse", "sparse", "multi",
                                       "sequence", "sequence"]
    assert schema["genres"].max_len == 3              # "Animation|Children|Comedy"
    assert schema["hist_movie_id"].vocab_of == "movie_id"
    assert schema["hist_category"].vocab_of == "category"
    assert schema["hist_movie_id"].length == schema["hist_category"].length == "hist_length"
    assert schema["hist_movie_id"].max_len == 3
    assert schema.batch_keys()[-1] == "hist_length"
    assert set(task.vocabularies) == {f.name for f in schema}
    assert [f.name for f in task.without_sequences().schema] == [
        "user_id", "movie_id", "category", "genres"]
    assert task.info["format"] == "ml-latest"


def test_task_split_sizes_per_user(task):
    expected = {1: (8, 0, 2), 2: (18, 2, 5), 3: (4, 0, 1), 4: (0, 0, 1), 5: (4, 0, 1)}
    for user, sizes in expected.items():
        found = tuple(len(_rows(d, user)) for d in (task.train, task.valid, task.test))
        assert found == sizes, f"user {user}"


def test_task_split_movies_in_time_order(task):
    assert _movies(task, task.test, 1) == ["9", "10"]
    # Movies 19 and 20 are rated only by user 2 in validation: unknown to the vocabulary.
    assert task.valid.columns["movie_id"][_rows(task.valid, 2)].tolist() == [UNK, UNK]
    assert _movies(task, task.train, 3) == ["4", "7", "9", "2"]
    assert _movies(task, task.test, 3) == ["5"]


def test_task_labels(task):
    # User 1 rates movies 1..10 with 4.0 3.5 5.0 2.0 4.5 1.0 3.0 0.5 (train) 4.0 5.0 (test).
    assert task.train.labels[_rows(task.train, 1)].tolist() == [1, 0, 1, 0, 1, 0, 0, 0]
    assert task.test.labels[_rows(task.test, 1)].tolist() == [1, 1]
    assert task.train.labels.dtype == np.float64


def test_task_vocabularies_from_train_only(task):
    movies = task.vocabularies["movie_id"]
    # Training ratings per movie: 1 -> users 1, 2, 5 (3); 9 -> users 2, 3 (2); 99 -> none.
    counts = dict(zip(movies.values.tolist(), movies.counts.tolist()))
    assert counts["1"] == 3
    assert counts["9"] == 2
    assert "99" not in counts
    assert "19" not in counts
    assert "21" not in counts
    assert task.test.columns["movie_id"][_rows(task.test, 5)].tolist() == [UNK]
    assert task.test.columns["user_id"][_rows(task.test, 4)].tolist() == [UNK]
    users = task.vocabularies["user_id"]
    assert users.values.tolist() == ["2", "1", "3", "5"]     # 18, 8, 4, 4 training rows


def test_task_genres_and_category(task):
    categories = task.vocabularies["category"]
    genres = task.vocabularies["genres"]
    rows = _rows(task.train, 5)                      # movies 1, 2, 3, 26
    assert categories.decode(task.train.columns["category"][rows]).tolist() == [
        "Comedy", "Comedy", "Drama", "<unk>"]
    genre_ids = task.train.columns["genres"][rows]
    assert genres.decode(genre_ids[1]).tolist() == ["Comedy", "Drama", "<pad>"]
    assert genre_ids[3].tolist() == [PAD, PAD, PAD]       # "(no genres listed)"


def test_task_histories(task):
    movies = task.vocabularies["movie_id"]
    rows = _rows(task.train, 3)                      # movies 4, 7, 9, 2
    history = task.train.columns["hist_movie_id"][rows]
    lengths = task.train.columns["hist_length"][rows]
    assert lengths.tolist() == [0, 1, 2, 3]
    assert history[0].tolist() == [PAD, PAD, PAD]
    assert movies.decode(history[2][:2]).tolist() == ["4", "7"]
    assert history[2][2] == PAD
    assert movies.decode(history[3]).tolist() == ["4", "7", "9"]
    # The history of the test row (movie 5) is the 3 most recent earlier ratings: 7, 9, 2.
    test_row = _rows(task.test, 3)
    assert movies.decode(task.test.columns["hist_movie_id"][test_row][0]).tolist() == [
        "7", "9", "2"]
    # User 2's first test rating (movie 21) follows 18 (train) and 19, 20 (validation).
    first_test = _rows(task.test, 2)[0]
    assert task.test.columns["hist_movie_id"][first_test].tolist() == [
        movies.encode(["18"])[0], UNK, UNK]
    # Categories follow the same positions: movie 2 is "Comedy|Drama".
    categories = task.vocabularies["category"]
    hist_category = task.test.columns["hist_category"][test_row][0]
    assert categories.decode(hist_category).tolist()[2] == "Comedy"


def test_task_rejects_bad_options():
    with pytest.raises(ValueError, match="max_history must be a positive integer"):
        movielens_click_task(LATEST, max_history=0)
    with pytest.raises(ValueError, match="min_count must be a positive integer"):
        movielens_click_task(LATEST, min_count=0)


def test_task_min_count():
    task = movielens_click_task(LATEST, min_count=3)
    # Movies with at least 3 training ratings keep an id: 1 and 3 (users 1, 2, 5),
    # 2 (users 1, 2, 3, 5), 4 and 7 (users 1, 2, 3). Movie 9 has 2 (users 2, 3).
    assert sorted(task.vocabularies["movie_id"].values.tolist()) == ["1", "2", "3", "4", "7"]
    assert task.vocabularies["movie_id"].encode(["9"]).tolist() == [UNK]


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_task_user_fields(name):
    task = movielens_click_task(FIXTURES / name)
    names = [f.name for f in task.schema]
    assert names[:4] == ["user_id", "gender", "age", "occupation"]
    assert task.vocabularies["gender"].values.tolist() in (["M", "F"], ["F", "M"])
    total = len(task.train) + len(task.valid) + len(task.test)
    assert total == len(load_movielens(FIXTURES / name).ratings["user_id"])


def test_task_is_deterministic():
    first = movielens_click_task(LATEST, max_history=3)
    second = movielens_click_task(LATEST, max_history=3)
    for name in ("train", "valid", "test"):
        a, b = getattr(first, name), getattr(second, name)
        for key in a.columns:
            assert np.array_equal(a.columns[key], b.columns[key]), (name, key)


# --- the real ml-latest-small, when it is available -------------------------------------

def _real_folder() -> Path | None:
    candidates = []
    if os.environ.get("MINIREC_DATA"):
        root = Path(os.environ["MINIREC_DATA"])
        candidates += [root / "ml-latest-small", root]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small")
    return next((c for c in candidates if (c / "ratings.csv").is_file()), None)


@pytest.mark.movielens
def test_real_ml_latest_small():
    folder = _real_folder()
    if folder is None:
        pytest.skip("ml-latest-small not found (set MINIREC_DATA to the folder holding it)")
    start = time.perf_counter()
    task = movielens_click_task(folder)
    seconds = time.perf_counter() - start
    assert seconds < 10, f"loading took {seconds:.1f} s"

    data = load_movielens(folder)
    n = len(data.ratings["user_id"])
    assert len(task.train) + len(task.valid) + len(task.test) == n
    labels = np.concatenate([task.train.labels, task.valid.labels, task.test.labels])
    assert 0.3 < labels.mean() < 0.7

    order, split, _ = temporal_split(data.ratings["user_id"], data.ratings["timestamp"],
                                     data.ratings["movie_id"])
    user = data.ratings["user_id"][order]
    timestamp = data.ratings["timestamp"][order]
    same_user = user[1:] == user[:-1]
    assert np.all(np.diff(timestamp)[same_user] >= 0)
    assert np.all(np.diff(split)[same_user] >= 0)      # train, then valid, then test
    assert set(user[split == TEST].tolist()) == set(user.tolist())
    for code, dataset in ((TRAIN, task.train), (VALID, task.valid), (TEST, task.test)):
        assert len(dataset) == int((split == code).sum())
    train_movies = set(data.ratings["movie_id"][order][split == TRAIN].astype(str).tolist())
    assert set(task.vocabularies["movie_id"].values.tolist()) == train_movies
