"""Schemas, datasets, vocabularies and loaders for MovieLens, Criteo and libFM files."""

from .criteo import load_criteo, read_criteo
from .dataset import Dataset, TaskSplits
from .libfm import load_libfm, read_libfm
from .movielens import load_movielens, movielens_click_task
from .schema import Field, Schema
from .vocab import PAD, UNK, HashedVocabulary, Vocabulary, vocabulary_from_dict

__all__ = [
    "Dataset", "Field", "HashedVocabulary", "PAD", "Schema", "TaskSplits", "UNK",
    "Vocabulary", "load_criteo", "load_libfm", "load_movielens", "movielens_click_task",
    "read_criteo", "read_libfm", "vocabulary_from_dict",
]
