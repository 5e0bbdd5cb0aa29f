"""MovieLens ratings in their three published layouts, and the click task built on them.

Layouts, recognised from the files a folder contains:

- ``ml-100k``: ``u.data`` (tab-separated user, movie, rating, timestamp), ``u.item``
  (pipe-separated, Latin-1, 5 columns then 19 genre flags) and ``u.user`` (pipe-separated
  user, age, gender, occupation, zip code);
- ``ml-1m``: ``ratings.dat``, ``movies.dat`` and ``users.dat``, ``::``-separated, Latin-1;
  genres are ``|``-separated names;
- ``ml-latest`` (also ml-latest-small): ``ratings.csv`` and ``movies.csv`` with a header,
  UTF-8, titles quoted when they contain commas. There is no user file.

Bad lines raise ValueError naming the file, the line, the column and the value; no line is
skipped. The MovieLens data are not shipped with minirec: pass the folder you downloaded.

NOTE: the readers parse lines in Python. On a 2-core machine, ml-latest-small (100,836
ratings) becomes a click task in about 1.5 s, and a synthetic folder of ml-1m size (one
million ratings) in about 13 s with 2 GB of peak memory. The full ml-latest (over 30
million ratings) would need about 60 GB by the same measure, an estimate, and is not a
target.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..nn.base import check_positive_int
from .dataset import Dataset, TaskSplits, check_file, iter_lines, line_error, parse_numbers
from .schema import MULTI, SEQUENCE, SPARSE, Field, Schema
from .vocab import PAD, Vocabulary

FORMAT_FILES = {
    "ml-100k": ("u.data", "u.item", "u.user"),
    "ml-1m": ("ratings.dat", "movies.dat", "users.dat"),
    "ml-latest": ("ratings.csv", "movies.csv"),
}

# The 19 genre flags of u.item, in column order (from the ml-100k README and u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# ml-latest writes this in place of a genre list; it is read as "no genres".
NO_GENRES = "(no genres listed)"

TRAIN, VALID, TEST = 0, 1, 2
CLICK_THRESHOLD = 4.0


@dataclass
class MovieLensData:
    """The parsed files of one MovieLens folder, as NumPy columns.

    ``ratings``: ``user_id``, ``movie_id`` (int64), ``rating`` (float64), ``timestamp``
    (int64, seconds), and ``line`` (the line number of each rating in ``ratings_file``).
    ``movies``: ``movie_id`` (int64), ``title`` (str) and ``genres`` (object array of
    tuples of genre names, possibly empty). ``users`` (ml-100k and ml-1m only, else None):
    ``user_id`` (int64), ``gender``, ``age``, ``occupation``, ``zip_code`` (str).
    """

    format: str
    path: Path
    ratings_file: Path
    ratings: dict
    movies: dict
    users: dict | None


def detect_format(path) -> str:
    """Return ``"ml-100k"``, ``"ml-1m"`` or ``"ml-latest"`` from the files in folder ``path``."""
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"MovieLens folder not found: {folder}")
    if not folder.is_dir():
        raise ValueError(f"expected a MovieLens folder, got the file {folder}")
    found = [name for name, files in FORMAT_FILES.items()
             if all((folder / file).is_file() for file in files)]
    if len(found) == 1:
        return found[0]
    needs = "; ".join(f"{name} needs {', '.join(files)}" for name, files in FORMAT_FILES.items())
    if not found:
        raise ValueError(f"{folder} contains no recognised MovieLens format: {needs}")
    raise ValueError(f"{folder} contains the files of several MovieLens formats ({found}); "
                     "keep one format a folder")


def load_movielens(path) -> MovieLensData:
    """Read the ratings, movies and (where present) users of a MovieLens folder."""
    folder = Path(path)
    layout = detect_format(folder)
    if layout == "ml-100k":
        data = _load_100k(folder)
    elif layout == "ml-1m":
        data = _load_1m(folder)
    else:
        data = _load_latest(folder)
    _check_references(data)
    return data


def _load_100k(folder: Path) -> MovieLensData:
    ratings_file = folder / "u.data"
    ratings = _parse_ratings(ratings_file, *_read_delimited(
        ratings_file, "\t", ("user_id", "movie_id", "rating", "timestamp"), "latin-1"))

    item_file = folder / "u.item"
    names = ("movie_id", "title", "release_date", "video_release_date", "imdb_url",
             *ML100K_GENRES)
    columns, lines = _read_delimited(item_file, "|", names, "latin-1")
    flags = np.array([columns[genre] for genre in ML100K_GENRES], dtype=str).reshape(
        len(ML100K_GENRES), len(lines))                                   # (19, m)
    bad = np.argwhere((flags != "0") & (flags != "1"))
    if bad.size:
        genre, row = bad[0]
        raise line_error(item_file, lines[row], ML100K_GENRES[genre], flags[genre, row],
                         "a genre flag 0 or 1")
    genres = [tuple(g for g, flag in zip(ML100K_GENRES, movie_flags) if flag == "1")
              for movie_flags in flags.T.tolist()]
    movies = _make_movies(item_file, columns["movie_id"], columns["title"], genres, lines)

    user_file = folder / "u.user"
    columns, lines = _read_delimited(
        user_file, "|", ("user_id", "age", "gender", "occupation", "zip_code"), "latin-1")
    users = _make_users(user_file, columns, lines)
    return MovieLensData("ml-100k", folder, ratings_file, ratings, movies, users)


def _load_1m(folder: Path) -> MovieLensData:
    ratings_file = folder / "ratings.dat"
    ratings = _parse_ratings(ratings_file, *_read_delimited(
        ratings_file, "::", ("user_id", "movie_id", "rating", "timestamp"), "latin-1"))

    movie_file = folder / "movies.dat"
    columns, lines = _read_delimited(movie_file, "::", ("movie_id", "title", "genres"),
                                     "latin-1")
    genres = _split_genres(movie_file, columns["genres"], lines)
    movies = _make_movies(movie_file, columns["movie_id"], columns["title"], genres, lines)

    user_file = folder / "users.dat"
    columns, lines = _read_delimited(
        user_file, "::", ("user_id", "gender", "age", "occupation", "zip_code"), "latin-1")
    users = _make_users(user_file, columns, lines)
    return MovieLensData("ml-1m", folder, ratings_file, ratings, movies, users)


def _load_latest(folder: Path) -> MovieLensData:
    ratings_file = folder / "ratings.csv"
    ratings = _parse_ratings(ratings_file, *_read_csv(
        ratings_file, ("userId", "movieId", "rating", "timestamp"),
        ("user_id", "movie_id", "rating", "timestamp")))

    movie_file = folder / "movies.csv"
    columns, lines = _read_csv(movie_file, ("movieId", "title", "genres"),
                               ("movie_id", "title", "genres"))
    genres = _split_genres(movie_file, columns["genres"], lines)
    movies = _make_movies(movie_file, columns["movie_id"], columns["title"], genres, lines)
    return MovieLensData("ml-latest", folder, ratings_file, ratings, movies, None)


def _read_delimited(path: Path, separator: str, names, encoding: str):
    """Split every line of ``path`` at ``separator``; return columns by name and line numbers."""
    check_file(path)
    rows, lines = [], []
    for number, line in iter_lines(path, encoding=encoding):
        parts = line.split(separator)
        if len(parts) != len(names):
            raise ValueError(
                f"{path}, line {number}: expected {len(names)} columns separated by "
                f"{separator!r} ({', '.join(names)}), found {len(parts)} in {line!r}"
            )
        rows.append(parts)
        lines.append(number)
    return _to_columns(rows, names), np.array(lines, dtype=np.int64)


def _read_csv(path: Path, header, names):
    """Read a CSV file whose first line must be ``header``; return columns and line numbers."""
    check_file(path)
    rows, lines, pending = [], [], []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            found = next(reader, None)
            if found != list(header):
                raise ValueError(f"{path}, line 1: expected the header {','.join(header)}, "
                                 f"found {','.join(found) if found else 'an empty line'}")
            for row in reader:
                if not row:                     # blank lines are accepted only at the end
                    pending.append(reader.line_num)
                    continue
                if pending or len(row) != len(header):
                    number = pending[0] if pending else reader.line_num
                    count = 0 if pending else len(row)
                    raise ValueError(f"{path}, line {number}: expected {len(header)} "
                                     f"comma-separated columns ({','.join(header)}), found {count}")
                rows.append(row)
                lines.append(reader.line_num)
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not valid UTF-8 text ({error})") from None
        except csv.Error as error:
            raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({error})") from None
    return _to_columns(rows, names), np.array(lines, dtype=np.int64)


def _to_columns(rows, names) -> dict:
    if not rows:
        return {name: [] for name in names}
    return dict(zip(names, (list(column) for column in zip(*rows))))


def _parse_ratings(path: Path, columns: dict, lines: np.ndarray) -> dict:
    if not len(lines):
        raise ValueError(f"{path} contains no ratings")
    ratings = {
        "user_id": parse_numbers(columns["user_id"], "int", path=path, line_numbers=lines,
                                 column="user_id"),
        "movie_id": parse_numbers(columns["movie_id"], "int", path=path, line_numbers=lines,
                                  column="movie_id"),
        "rating": parse_numbers(columns["rating"], "float", path=path, line_numbers=lines,
                                column="rating", expected="a rating between 0 and 5"),
        "timestamp": parse_numbers(columns["timestamp"], "int", path=path, line_numbers=lines,
                                   column="timestamp", expected="an integer timestamp"),
        "line": lines,
    }
    outside = (ratings["rating"] < 0) | (ratings["rating"] > 5)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise line_error(path, lines[row], "rating", columns["rating"][row],
                         "a rating between 0 and 5")
    return ratings


def _split_genres(path: Path, texts, lines) -> list[tuple]:
    genres = []
    for text, number in zip(texts, lines):
        names = () if text == NO_GENRES else tuple(text.split("|"))
        if any(not name for name in names):
            raise line_error(path, number, "genres", text,
                             f"genre names separated by '|', or {NO_GENRES!r}")
        genres.append(names)
    return genres


def _make_movies(path: Path, ids, titles, genres, lines) -> dict:
    movie_id = parse_numbers(ids, "int", path=path, line_numbers=lines, column="movie_id")
    _check_unique(path, movie_id, lines, "movie_id")
    genre_array = np.empty(len(genres), dtype=object)
    genre_array[:] = genres
    return {"movie_id": movie_id, "title": np.array(titles, dtype=str).reshape(len(lines)),
            "genres": genre_array}


def _make_users(path: Path, columns: dict, lines) -> dict:
    user_id = parse_numbers(columns["user_id"], "int", path=path, line_numbers=lines,
                            column="user_id")
    _check_unique(path, user_id, lines, "user_id")
    parse_numbers(columns["age"], "int", path=path, line_numbers=lines, column="age",
                  expected="an integer age")
    gender = np.array(columns["gender"], dtype=str).reshape(len(lines))
    bad = np.flatnonzero((gender != "M") & (gender != "F"))
    if bad.size:
        raise line_error(path, lines[bad[0]], "gender", gender[bad[0]], "M or F")
    users = {"user_id": user_id, "gender": gender}
    for name in ("age", "occupation", "zip_code"):
        users[name] = np.array(columns[name], dtype=str).reshape(len(lines))
    return users


def _check_unique(path: Path, ids: np.ndarray, lines: np.ndarray, column: str) -> None:
    order = np.argsort(ids, kind="stable")
    repeated = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if repeated.size:
        row = order[repeated[0] + 1]
        raise line_error(path, lines[row], column, int(ids[row]),
                         f"a {column} not used on an earlier line")


def _check_references(data: MovieLensData) -> None:
    """Raise ValueError for a rating whose movie (or user) is missing from its file."""
    tables = [("movie_id", data.movies)]
    if data.users is not None:
        tables.append(("user_id", data.users))
    for column, table in tables:
        rows = _find_rows(table[column], data.ratings[column])
        if (rows < 0).any():
            row = int(np.flatnonzero(rows < 0)[0])
            source = FORMAT_FILES[data.format][1 if column == "movie_id" else 2]
            raise ValueError(
                f"{data.ratings_file}, line {data.ratings['line'][row]}, column {column!r}: "
                f"{column} {int(data.ratings[column][row])} does not appear in {source}"
            )


def _find_rows(table_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Return the row of each of ``ids`` in ``table_ids``, or -1 where it is absent."""
    order = np.argsort(table_ids, kind="stable")
    position = np.searchsorted(table_ids[order], ids)
    position = np.minimum(position, len(order) - 1)
    found = table_ids[order][position] == ids
    return np.where(found, order[position], -1)


def temporal_split(user_id, timestamp, movie_id) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort ratings by (user, timestamp, movie id) and split each user's sequence in time.

    Of a user's ``n`` ratings, the last ``max(n // 5, 1)`` are test (20 %, rounded down, at
    least one). Of the ``m`` ratings before them, the last ``m // 10`` are validation (10 %,
    rounded down), and the rest are training. Ties in time are broken by movie id.

    Returns
    -------
    order : ndarray (n,)
        Indices that sort the ratings; the other outputs follow this order.
    split : ndarray (n,)
        ``TRAIN`` (0), ``VALID`` (1) or ``TEST`` (2) of each sorted rating.
    rank : ndarray (n,)
        Position of each sorted rating in its user's sequence, from 0.
    """
    user_id = np.asarray(user_id)
    n = user_id.shape[0]
    order = np.lexsort((np.asarray(movie_id), np.asarray(timestamp), user_id))
    users = user_id[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if n else np.zeros(0, int)
    counts = np.diff(np.r_[starts, n])
    user_index = np.repeat(np.arange(len(starts)), counts)                # (n,)
    rank = np.arange(n) - starts[user_index]
    count = counts[user_index]
    num_test = np.maximum(count // 5, 1)
    num_valid = (count - num_test) // 10
    num_train = count - num_test - num_valid
    split = np.where(rank < num_train, TRAIN, np.where(rank < num_train + num_valid, VALID, TEST))
    return order, split.astype(np.int64), rank.astype(np.int64)


def history_matrix(items, rank, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each row, the items of the same user's earlier rows, most recent last.

    ``items`` (n,) lists each user's rows contiguously in time order and ``rank`` (n,) is
    the position of a row in its user's sequence (as :func:`temporal_split` returns).
    Row ``i`` gets ``length = min(rank[i], max_len)`` items, left-aligned:
    ``history[i, j] = items[i - length + j]`` for ``j < length`` and 0 (padding) after.

    Returns ``history`` int64 (n, T) with ``T = max_len``, and ``lengths`` int64 (n,).
    """
    max_len = check_positive_int("max_len", max_len)
    items = np.asarray(items, dtype=np.int64)
    rank = np.asarray(rank, dtype=np.int64)
    n = items.shape[0]
    lengths = np.minimum(rank, max_len)                                   # (n,)
    positions = np.arange(max_len)                                        # (T,)
    history = np.zeros((n, max_len), dtype=np.int64)                      # (n, T)
    chunk = 65536                                  # bounds the (chunk, T) index arrays
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        row_lengths = lengths[rows]
        source = (rows - row_lengths)[:, None] + positions                # (c, T)
        valid = positions < row_lengths[:, None]                          # (c, T)
        history[rows] = np.where(valid, items[np.where(valid, source, 0)], PAD)
    return history, lengths


def movielens_click_task(path, *, max_history: int = 50, min_count: int = 1) -> TaskSplits:
    """Build the click task of a MovieLens folder: does the user rate the movie 4 or more?

    Each user's ratings are split in time by :func:`temporal_split`. Vocabularies are built
    on the training rows only (counts are rating counts), so values first seen in
    validation or test get the unknown id 1.

    Fields, in schema order: ``user_id``; ``gender``, ``age``, ``occupation`` (ml-100k and
    ml-1m only); ``movie_id``; ``category`` (the movie's first genre); ``genres`` (multi,
    width = the maximum number of genres of any movie); ``hist_movie_id`` and
    ``hist_category`` (sequences sharing the vocabularies of ``movie_id`` and ``category``,
    length key ``hist_length``). The history of a rating is the user's ratings strictly before it in
    (timestamp, movie id) order, of any label and any split, most recent last, at most
    ``max_history``. Labels are float64 0/1; ``groups`` are the raw user ids.

    Rows of each split are in (user, timestamp, movie id) order.
    """
    max_history = check_positive_int("max_history", max_history)
    min_count = check_positive_int("min_count", min_count)
    data = load_movielens(path)
    ratings = data.ratings
    order, split, rank = temporal_split(ratings["user_id"], ratings["timestamp"],
                                        ratings["movie_id"])
    user_id = ratings["user_id"][order]
    movie_id = ratings["movie_id"][order]
    labels = (ratings["rating"][order] >= CLICK_THRESHOLD).astype(np.float64)

    # Raw values of every field, one row per sorted rating.
    movie_rows = _find_rows(data.movies["movie_id"], movie_id)
    genre_table = _genre_table(data.movies["genres"])                     # (m, L)
    genres = genre_table[movie_rows]                                      # (n, L)
    raw = {"user_id": user_id}
    if data.users is not None:
        user_rows = _find_rows(data.users["user_id"], user_id)
        for name in ("gender", "age", "occupation"):
            raw[name] = data.users[name][user_rows]
    raw["movie_id"] = movie_id
    raw["category"] = genres[:, 0]            # "" (missing, so unknown) without genres
    raw["genres"] = genres

    train = split == TRAIN
    vocabularies, columns = {}, {}
    for name, values in raw.items():
        vocabulary = Vocabulary.build(values[train], min_count=min_count, name=name)
        vocabularies[name] = vocabulary
        columns[name] = vocabulary.encode(values)
    columns["genres"][genres == ""] = PAD

    columns["hist_movie_id"], columns["hist_length"] = history_matrix(
        columns["movie_id"], rank, max_history)
    columns["hist_category"], _ = history_matrix(columns["category"], rank, max_history)
    vocabularies["hist_movie_id"] = vocabularies["movie_id"]
    vocabularies["hist_category"] = vocabularies["category"]

    fields = [Field(name, SPARSE, vocabularies[name].size) for name in raw if name != "genres"]
    fields.append(Field("genres", MULTI, vocabularies["genres"].size,
                        max_len=genre_table.shape[1]))
    fields += [
        Field("hist_movie_id", SEQUENCE, max_len=max_history, vocab_of="movie_id",
              length="hist_length"),
        Field("hist_category", SEQUENCE, max_len=max_history, vocab_of="category",
              length="hist_length"),
    ]
    everything = Dataset(Schema(fields), columns, labels, groups=user_id)
    info = {"format": data.format, "path": str(data.path), "max_history": max_history,
            "min_count": min_count, "label": f"rating >= {CLICK_THRESHOLD:g}"}
    return TaskSplits("movielens-click", everything.take(np.flatnonzero(train)),
                      everything.take(np.flatnonzero(split == VALID)),
                      everything.take(np.flatnonzero(split == TEST)), vocabularies, info=info)


def _genre_table(genres) -> np.ndarray:
    """Return a (m, L) string array of each movie's genres, padded with ""."""
    width = max([len(g) for g in genres] + [1])
    table = np.full((len(genres), width), "", dtype=object)
    for row, names in enumerate(genres):
        table[row, :len(names)] = names
    return table.astype(str)
