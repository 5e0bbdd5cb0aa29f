# %% [markdown]
# # 07 · Every model on MovieLens · 在 MovieLens 上比较所有模型
#
# The last lesson puts the course's models side by side on real data: the MovieLens ratings
# published by GroupLens, turned into a click-through rate prediction (点击率预估) task.
#
# - label (标签): $y = 1$ when the user rated the movie 4 or more, else $y = 0$;
# - per-user temporal split (按用户的时间划分): each user's ratings are sorted by time. The last
#   20% (rounded down, at least one) are the test split, the last 10% of the rest the
#   validation split, and the rest the training split. Every model therefore predicts a
#   user's later ratings from earlier ones;
# - behaviour sequence (用户行为序列) for DIN: the movies the user rated before this rating
#   (whatever their label or split, never a later one), most recent last.
#
# Every model follows one protocol: embedding size 16, MLP (200, 200) where the model has one,
# Adam with learning rate 1e-3, batch 256, at most 10 epochs, and early stopping (早停) on the
# validation AUC with patience 2. The weights of the best validation epoch are scored once on
# the test split. The table reports AUC, log loss, GAUC (the AUC of each user, weighted by the
# user's impressions) and the relative improvement (相对提升) over a base model:
#
# $$\mathrm{RelaImpr} = \Big(\frac{\mathrm{AUC(model)} - 0.5}{\mathrm{AUC(base)} - 0.5}
#   - 1\Big) \times 100\%$$
#
# The base is DIN's base model (基准模型) for DIN and FM for every other model.
#
# 最后一课在真实数据上并排比较课程中的所有模型：把 MovieLens 评分变成点击率预估任务。评分
# 不低于 4 记为点击（标签 1）；每个用户的评分按时间排序，最后 20% 是测试集，其余的最后 10% 是
# 验证集，其余是训练集；DIN 的用户行为序列是该用户此前评过分的电影。所有模型使用同一训练流程，
# 比较测试集上的 AUC、对数损失、GAUC 和相对提升 RelaImpr。

# %%
"""Lesson 07: every model of the course on MovieLens (or the synthetic worlds), one protocol."""

TITLE_EN = "Every model on MovieLens: one protocol, one table of AUC, log loss and GAUC"
TITLE_ZH = "在 MovieLens 上比较所有模型：同一训练流程，一张 AUC、对数损失与 GAUC 对比表"

import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minirec.lesson import Lesson, use_agg_backend

use_agg_backend()

import matplotlib.pyplot as plt  # noqa: E402

from minirec import metrics  # noqa: E402
from minirec.cli import MAX_HISTORY, default_regularizer  # noqa: E402
from minirec.data.dataset import TaskSplits  # noqa: E402
from minirec.data.movielens import movielens_click_task  # noqa: E402
from minirec.data.synthetic import WORLDS  # noqa: E402
from minirec.models.base import get_model_class  # noqa: E402
from minirec.train import TrainResult, fit, predict_logits  # noqa: E402

lesson = Lesson("07_movielens", sys.argv[1:], description=(TITLE_EN, TITLE_ZH))
started = time.perf_counter()
print(lesson.text(TITLE_EN, TITLE_ZH))


def pad(text, width):
    """Return ``text`` padded to ``width`` terminal columns (a CJK character takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(width - columns, 0)


# %% [markdown]
# ## 1. The click task on a toy MovieLens folder · 在玩具 MovieLens 数据上构造点击任务
#
# Two users and twelve movies, written as a folder in the ml-latest layout (ratings.csv and
# movies.csv), so that `minirec.data.movielens.movielens_click_task` reads it like the real
# data. Worked on paper:
#
# - user 1 rated 12 movies: 12 // 5 = 2 test ratings, (12 - 2) // 10 = 1 validation rating,
#   9 training ratings. Movies 104 and 105 share a timestamp; the smaller movie id comes first;
# - user 2 rated 4 movies: max(4 // 5, 1) = 1 test rating, (4 - 1) // 10 = 0 validation
#   ratings, 3 training ratings. The test rating is 3.5, so its label is 0;
# - with at most 3 behaviours, user 1's first test rating (movie 111) has the history
#   108, 109, 110, and the next one (movie 112) has 109, 110, 111;
# - movies 111 and 112 are rated only in the test split. Vocabularies are built on the
#   training split, so both get the unknown id 1, also inside a behaviour sequence.

# %%
lesson.section("1. The click task on a toy MovieLens folder",
               "1. 在玩具 MovieLens 数据上构造点击任务")
TOY_GENRES = {101: "Comedy|Romance", 102: "Action|Thriller", 103: "Drama", 104: "Action",
              105: "Comedy", 106: "Drama|Romance", 107: "Action|Sci-Fi", 108: "Comedy",
              109: "Drama", 110: "Action", 111: "Comedy|Drama", 112: "(no genres listed)"}
# (user, movie, rating, timestamp) in file order, which is not time order.
TOY_RATINGS = [
    (2, 110, 4.0, 2050), (1, 105, 4.5, 1200), (1, 101, 4.0, 1000), (1, 104, 3.0, 1200),
    (1, 103, 2.0, 1100), (1, 102, 5.0, 1050), (2, 103, 5.0, 2000), (1, 106, 1.0, 1300),
    (1, 107, 4.0, 1400), (1, 108, 3.5, 1500), (1, 109, 5.0, 1600), (1, 110, 4.0, 1700),
    (2, 101, 3.0, 2010), (1, 111, 2.0, 1800), (1, 112, 4.0, 1900), (2, 112, 3.5, 2100),
]
TOY_HISTORY = 3
SPLITS = ("train", "valid", "test")

lesson.say(
    "The label is rating >= 4. Each user's ratings are sorted by (timestamp, movie id); of n "
    "ratings, the last max(n // 5, 1) are test, the last (n - n_test) // 10 before them are "
    "validation, and the rest training. The behaviour sequence of a rating holds the movies "
    f"the same user rated before it, here at most {TOY_HISTORY}, most recent last.",
    "标签是“评分 >= 4”。每个用户的评分按（时间戳，电影 id）排序；n 条评分中，最后 "
    "max(n // 5, 1) 条是测试集，它之前的最后 (n - n_test) // 10 条是验证集，其余是训练集。一条评分的"
    f"用户行为序列是同一用户在它之前评过分的电影，这里最多 {TOY_HISTORY} 部，最近的在最后。",
)

# By hand: sort, cut each user's sequence, label, and list the earlier movies.
toy = np.array(TOY_RATINGS)                                             # (16, 4)
toy_user = toy[:, 0].astype(np.int64)
toy_movie = toy[:, 1].astype(np.int64)
toy_rating = toy[:, 2]
toy_time = toy[:, 3].astype(np.int64)
time_order = np.lexsort((toy_movie, toy_time, toy_user))               # user, time, movie id
hand = {split: {"user": [], "movie": [], "label": [], "history": []} for split in SPLITS}
print(lesson.text("user  movie  rating  time  split  label  behaviour sequence",
                  "用户  电影   评分    时间  划分   标签   用户行为序列"))
for user in np.unique(toy_user):
    rows = time_order[toy_user[time_order] == user]                    # this user, in time order
    n = len(rows)
    n_test = max(n // 5, 1)
    n_valid = (n - n_test) // 10
    n_train = n - n_test - n_valid
    for rank, row in enumerate(rows):
        split = SPLITS[0] if rank < n_train else SPLITS[1] if rank < n_train + n_valid \
            else SPLITS[2]
        label = float(toy_rating[row] >= 4)
        history = toy_movie[rows[max(rank - TOY_HISTORY, 0):rank]].tolist()
        for key, value in (("user", user), ("movie", toy_movie[row]), ("label", label),
                           ("history", history)):
            hand[split][key].append(value)
        print(f"{user:>4}  {toy_movie[row]:>5}  {toy_rating[row]:>6.1f}  {toy_time[row]:>4}  "
              f"{split:<5}  {label:>5.0f}  {history}")

with tempfile.TemporaryDirectory() as folder:
    with open(Path(folder) / "movies.csv", "w", encoding="utf-8") as handle:
        handle.write("movieId,title,genres\n")
        for movie, genres in TOY_GENRES.items():
            handle.write(f"{movie},Movie {movie} (2000),{genres}\n")
    with open(Path(folder) / "ratings.csv", "w", encoding="utf-8") as handle:
        handle.write("userId,movieId,rating,timestamp\n")
        for user, movie, rating, timestamp in TOY_RATINGS:
            handle.write(f"{user},{movie},{rating},{timestamp}\n")
    toy_task = movielens_click_task(folder, max_history=TOY_HISTORY)

movie_vocabulary = toy_task.vocabularies["movie_id"]
known_movies = set(hand["train"]["movie"])             # vocabularies come from training rows


def hand_names(movies, width=None):
    """Return the vocabulary's spelling of raw movie ids: the id, or <unk> if unseen in training."""
    names = [str(movie) if movie in known_movies else "<unk>" for movie in movies]
    if width is not None:
        names += ["<pad>"] * (width - len(names))
    return names


for split in SPLITS:
    dataset = getattr(toy_task, split)
    lesson.show(f"{split}: movie_id decoded", movie_vocabulary.decode(dataset.columns["movie_id"]))
    lesson.show(f"{split}: labels", dataset.labels)
    lesson.show(f"{split}: hist_movie_id decoded",
                movie_vocabulary.decode(dataset.columns["hist_movie_id"]))
    lesson.agree(f"{split} labels", hand[split]["label"], dataset.labels)
    hand_history = [hand_names(history, TOY_HISTORY) for history in hand[split]["history"]]
    lesson.claim(
        np.array_equal(dataset.groups, hand[split]["user"])
        and np.array_equal(movie_vocabulary.decode(dataset.columns["movie_id"]),
                           hand_names(hand[split]["movie"]))
        and np.array_equal(movie_vocabulary.decode(dataset.columns["hist_movie_id"]),
                           np.array(hand_history, dtype=object).reshape(-1, TOY_HISTORY)),
        f"{split} split: the users, movies and behaviour sequences worked by hand are those of "
        f"movielens_click_task (rows: {len(dataset)})",
        f"{split} 划分：手算的用户、电影和用户行为序列与 movielens_click_task 的结果一致"
        f"（{len(dataset)} 行）",
    )
lesson.say(
    "Movies 111 and 112 appear only in the test split, so the vocabulary built on the training "
    "split does not know them: they become the unknown id 1 (<unk>), in the movie_id column and "
    "in the behaviour sequence of the rating that follows them. The history crosses split "
    "boundaries (the test rows see the validation rating 110) but never looks ahead in time.",
    "电影 111 和 112 只出现在测试集，只用训练集构建的词表不认识它们：它们在 movie_id 列里、"
    "以及在其后一条评分的用户行为序列里都变成未知 id 1（<unk>）。行为序列可以跨越划分边界"
    "（测试行能看到验证集中的 110），但从不看向未来。",
)

# %% [markdown]
# ## 2. The data · 数据
#
# With `--data PATH` (a MovieLens folder: ml-latest-small, ml-100k or ml-1m) the comparison
# runs on real ratings. Models other than DIN and its base model get every field except the
# behaviour sequences, as `minirec train` gives them. Without `--data` the lesson runs the
# same comparison on two synthetic worlds whose truth is known. The FM family and AFM train
# on the click world of lesson 03 (first-order effects, planted field pairs, a three-field
# product). DIN and its base model train on the interest world of lesson 06, where a click
# depends on the behaviours of the candidate's category.
#
# 给出 `--data 路径`（MovieLens 文件夹）时在真实评分上比较；否则在两个已知真相的合成数据上做
# 同样的比较：第 03 课的点击数据（FM 家族与 AFM）和第 06 课的兴趣数据（DIN 与基准模型）。

# %%
lesson.section("2. The data", "2. 数据")
MODELS = ("fm", "fnn", "deepfm", "wide-deep", "deep-crossing", "nfm", "afm", "din-base", "din")
SEQUENCE_MODELS = ("din-base", "din")
SEED = 0
# Quick mode with --data keeps the first users' rows and shorter histories, so the run
# takes seconds instead of minutes.
QUICK_USERS = 100
QUICK_HISTORY = 10


@dataclass
class Comparison:
    """One data set and the models compared on it."""

    label: str          # printed in the lesson's language
    title: str          # drawn in the figure, in English
    splits: TaskSplits
    models: tuple
    cross: tuple | None  # the pair of sparse fields crossed in Wide&Deep's wide part


def keep_users(splits, users):
    """Return ``splits`` restricted to the rows of ``users`` (raw user ids)."""
    def keep(dataset):
        return dataset.take(np.isin(dataset.groups, users))
    return TaskSplits(splits.name, keep(splits.train), keep(splits.valid), keep(splits.test),
                      splits.vocabularies, splits.truth, splits.info)


def load_movielens(path):
    """Build the MovieLens click task, or stop with a message naming the bad path."""
    max_history = QUICK_HISTORY if lesson.quick else MAX_HISTORY
    try:
        splits = movielens_click_task(path, max_history=max_history)
    except (OSError, ValueError) as error:
        raise SystemExit(lesson.text(
            f"cannot read the MovieLens folder {path}: {error}",
            f"无法读取 MovieLens 文件夹 {path}：{error}"))
    if lesson.quick:
        splits = keep_users(splits, np.unique(splits.train.groups)[:QUICK_USERS])
    return splits


def check_histories(splits):
    """Return (users with earlier ratings, those whose first test history ends with the latest).

    "The latest" is the movie of the user's last rating before the test split.
    """
    latest = {}
    for dataset in (splits.train, splits.valid):           # valid rows come later in time
        users = dataset.groups
        ends = np.flatnonzero(np.r_[users[1:] != users[:-1], True]) if len(users) else []
        for row in ends:
            latest[users[row]] = dataset.columns["movie_id"][row]
    users = splits.test.groups
    firsts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    lengths = splits.test.columns["hist_length"][firsts]
    histories = splits.test.columns["hist_movie_id"][firsts]
    checked = matching = 0
    for user, length, history in zip(users[firsts], lengths, histories):
        if user in latest:
            checked += 1
            matching += bool(length > 0 and history[length - 1] == latest[user])
    return checked, matching


if lesson.data:
    splits = load_movielens(lesson.data)
    label = f"MovieLens {Path(lesson.data).name} ({splits.info['format']})"
    comparisons = [Comparison(label, label, splits, MODELS, ("user_id", "category"))]
    n_users = len(np.unique(np.concatenate([getattr(splits, s).groups for s in SPLITS])))
    lesson.say(
        f"{label}: {n_users} users; {len(splits.train)} training, {len(splits.valid)} "
        f"validation and {len(splits.test)} test ratings; click rate (share of ratings >= 4) "
        f"{splits.train.labels.mean():.3f} / {splits.valid.labels.mean():.3f} / "
        f"{splits.test.labels.mean():.3f}; fields {[f.name for f in splits.schema]}.",
        f"{label}：{n_users} 个用户；训练集 {len(splits.train)} 条、验证集 {len(splits.valid)} 条、"
        f"测试集 {len(splits.test)} 条评分；点击率（评分 >= 4 的比例）"
        f"{splits.train.labels.mean():.3f} / {splits.valid.labels.mean():.3f} / "
        f"{splits.test.labels.mean():.3f}；特征域 {[f.name for f in splits.schema]}。",
    )
    if lesson.quick:
        lesson.say(
            f"Quick mode: the first {QUICK_USERS} users only, histories of at most "
            f"{QUICK_HISTORY} movies.",
            f"快速模式：只取前 {QUICK_USERS} 个用户，行为序列最多 {QUICK_HISTORY} 部电影。",
        )
    lesson.claim(set(splits.test.groups) == set(splits.train.groups) | set(splits.valid.groups)
                 | set(splits.test.groups),
                 f"every one of the {n_users} users has ratings in the test split",
                 f"全部 {n_users} 个用户在测试集中都有评分")
    checked, matching = check_histories(splits)
    lesson.claim(checked > 0 and matching == checked,
                 f"for all {checked} users with earlier ratings, the behaviour sequence of the "
                 f"first test rating ends with the movie rated just before it",
                 f"对全部 {checked} 个有更早评分的用户，第一条测试评分的行为序列都以紧挨在它之前"
                 f"评分的电影结尾")
else:
    lesson.say(
        "No --data given. MovieLens is not shipped with minirec (its licence allows "
        "redistribution only under its own terms). To run this comparison on real ratings, "
        "download ml-latest-small.zip from https://grouplens.org/datasets/movielens/, unzip "
        "it and run: python lessons/07_movielens.py --data PATH/ml-latest-small "
        "(ml-100k and ml-1m folders work too). Meanwhile the same comparison runs on two "
        "synthetic worlds.",
        "没有给出 --data。minirec 不附带 MovieLens（它的许可只允许按其自身条款再分发）。要在真实"
        "评分上运行这个比较，请从 https://grouplens.org/datasets/movielens/ 下载 "
        "ml-latest-small.zip，解压后运行：python lessons/07_movielens.py --data 路径/ml-latest-small"
        "（ml-100k 和 ml-1m 文件夹也可以）。下面先在两个合成数据上做同样的比较。",
    )
    click = WORLDS["click"](6000 if lesson.quick else 20000, random_state=SEED)
    interest = WORLDS["interest"](200 if lesson.quick else 600, random_state=SEED)
    comparisons = [
        Comparison(lesson.text("click world", "点击数据"), "click world", click, MODELS[:7],
                   ("f0", "f1")),
        Comparison(lesson.text("interest world", "兴趣数据"), "interest world", interest,
                   SEQUENCE_MODELS, None),
    ]
    lesson.say(
        f"click world (lesson 03): {len(click.train)} / {len(click.valid)} / {len(click.test)} "
        f"rows, fields {[f.name for f in click.schema]}, no users, so no GAUC. "
        f"Interest world (lesson 06): {len(interest.train)} / {len(interest.valid)} / "
        f"{len(interest.test)} impressions of {len(np.unique(interest.train.groups))} users, "
        f"fields {[f.name for f in interest.schema]}.",
        f"点击数据（第 03 课）：{len(click.train)} / {len(click.valid)} / {len(click.test)} 行，"
        f"特征域 {[f.name for f in click.schema]}，没有用户，所以没有 GAUC。兴趣数据（第 06 课）："
        f"{len(np.unique(interest.train.groups))} 个用户的 {len(interest.train)} / "
        f"{len(interest.valid)} / {len(interest.test)} 次曝光，特征域 "
        f"{[f.name for f in interest.schema]}。",
    )

# %% [markdown]
# ## 3. One protocol for every model · 所有模型使用同一训练流程
#
# FNN trains in two stages: the FM of this table is its stage one, and its training time
# counts both stages. Wide&Deep's wide part crosses one pair of fields: user and category on
# MovieLens, f0 and f1 (a planted pair) in the click world. `minirec.train.fit` keeps the
# weights of the epoch with the best validation AUC and scores the whole test split once with
# them. The test split never takes part in any choice.
#
# FNN 分两阶段训练：表中的 FM 就是它的第一阶段，其训练时间包含两个阶段。`fit` 保留验证集 AUC
# 最好的那一轮的权重，并用它在整个测试集上评估一次；测试集不参与任何选择。

# %%
lesson.section("3. One protocol for every model", "3. 所有模型使用同一训练流程")
EMBEDDING_DIM = 16
HIDDEN = (200, 200)
LEARNING_RATE = 1e-3
BATCH_SIZE = 256
EPOCHS = 2 if lesson.quick else 10
PATIENCE = 2
MLP_MODELS = ("fnn", "deepfm", "wide-deep", "nfm", "din-base", "din")
# Epoch lines from fit only for the long runs on real data.
VERBOSE = bool(lesson.data) and not lesson.quick
lesson.say(
    f"embedding size {EMBEDDING_DIM}; MLP {HIDDEN} for {', '.join(MLP_MODELS)} and two "
    f"residual units of inner width {HIDDEN[0]} for deep-crossing; Adam, learning rate "
    f"{LEARNING_RATE:g}, batch {BATCH_SIZE}, at most {EPOCHS} epochs, early stopping after "
    f"{PATIENCE} epochs without a better validation AUC; seed {SEED}.",
    f"嵌入维度 {EMBEDDING_DIM}；{', '.join(MLP_MODELS)} 的 MLP 为 {HIDDEN}，deep-crossing 用两个"
    f"内部宽度 {HIDDEN[0]} 的残差单元；Adam，学习率 {LEARNING_RATE:g}，批大小 {BATCH_SIZE}，最多 "
    f"{EPOCHS} 轮，验证集 AUC 连续 {PATIENCE} 轮没有提高就早停；随机种子 {SEED}。",
)
for comparison in comparisons:
    if "wide-deep" in comparison.models:
        first, second = comparison.cross
        lesson.say(f"{comparison.label}: Wide&Deep's wide part crosses {first} x {second}.",
                   f"{comparison.label}：Wide&Deep 的宽度部分交叉 {first} x {second}。")
if lesson.quick:
    lesson.say(f"Quick mode: at most {EPOCHS} epochs, so the numbers below are no benchmark.",
               f"快速模式：最多 {EPOCHS} 轮，下面的数字不能当作基准结果。")


@dataclass
class Run:
    """One trained model: its data, fit's result and its training time (both stages for FNN)."""

    comparison: str
    name: str
    data: TaskSplits
    result: TrainResult
    seconds: float


def build_model(name, schema, cross):
    """Build model ``name`` with the protocol's sizes."""
    settings = {"embedding_dim": EMBEDDING_DIM, "random_state": SEED}
    if name in MLP_MODELS:
        settings["hidden"] = HIDDEN
    if name == "deep-crossing":
        settings["residual_hidden"] = HIDDEN
    if name == "wide-deep":
        settings["cross_features"] = [cross]
    return get_model_class(name)(schema, **settings)


def train_all(comparison):
    """Train every model of ``comparison`` and return a dict name -> Run."""
    runs = {}
    flat = comparison.splits.without_sequences()
    for name in comparison.models:
        data = comparison.splits if name in SEQUENCE_MODELS else flat
        if name == "fnn":
            model = get_model_class("fnn").from_fm(runs["fm"].result.model, hidden=HIDDEN,
                                                   random_state=SEED)
        else:
            model = build_model(name, data.schema, comparison.cross)
        if VERBOSE:
            lesson.say(f"training {name} ({model.num_parameters()} parameters)",
                       f"训练 {name}（{model.num_parameters()} 个参数）")
        # din and din-base train with the DIN paper's mini-batch aware L2, as the command does.
        regularizer = default_regularizer(name, model, data.train)
        result = fit(model, data, lr=LEARNING_RATE, epochs=EPOCHS, batch_size=BATCH_SIZE,
                     patience=PATIENCE, random_state=SEED, verbose=VERBOSE, lang=lesson.lang,
                     regularizer=regularizer)
        seconds = result.train_seconds + (runs["fm"].seconds if name == "fnn" else 0.0)
        runs[name] = Run(comparison.label, name, data, result, seconds)
        lesson.say(f"{comparison.label}: {name}: {len(result.history)} epochs, best "
                   f"{result.best_epoch}, test AUC {result.test['auc']:.4f}, {seconds:.1f} s",
                   f"{comparison.label}：{name}：{len(result.history)} 轮，最好第 "
                   f"{result.best_epoch} 轮，测试集 AUC {result.test['auc']:.4f}，{seconds:.1f} 秒")
    return runs


def base_of(name, runs):
    """Return the base model of ``name`` for RelaImpr: din-base for DIN, else FM (if trained)."""
    if name == "din" and "din-base" in runs:
        return "din-base"
    if name != "fm" and "fm" in runs:
        return "fm"
    return None


all_runs = [train_all(comparison) for comparison in comparisons]

# %% [markdown]
# ## 4. The comparison table · 对比表
#
# RelaImpr measures how much further from random guessing (AUC 0.5) a model is than its base:
# 10% means (AUC - 0.5) is 1.1 times the base's. GAUC averages the AUC of each user, so it
# ignores how the users differ from each other and measures the ranking within one user's
# impressions, which is what a recommender shows.
#
# RelaImpr 衡量模型比基准模型离随机猜测（AUC 0.5）远多少；GAUC 是每个用户 AUC 的加权平均，
# 只衡量同一用户内部的排序。

# %%
lesson.section("4. The comparison table", "4. 对比表")
headers = [lesson.text("model", "模型"), lesson.text("test AUC", "测试 AUC"),
           lesson.text("log loss", "对数损失"), "GAUC", "RelaImpr",
           lesson.text("base", "基准"), lesson.text("epochs", "轮数"),
           lesson.text("time (s)", "时间（秒）")]
widths = [15, 10, 10, 8, 10, 10, 10, 10]
table_rows = []
for runs, comparison in zip(all_runs, comparisons):
    print()
    print(comparison.label)
    print("".join(pad(header, width) for header, width in zip(headers, widths)))
    for name, run in runs.items():
        test = run.result.test
        base = base_of(name, runs)
        relative = "-"
        if base is not None and runs[base].result.test["auc"] > 0.5:
            relative = f"{metrics.rela_impr(test['auc'], runs[base].result.test['auc']):+.1f}%"
        gauc = f"{test['gauc']:.4f}" if "gauc" in test else "-"
        cells = [name, f"{test['auc']:.4f}", f"{test['logloss']:.4f}", gauc, relative,
                 base or "-", f"{run.result.best_epoch}/{len(run.result.history)}",
                 f"{run.seconds:.1f}"]
        print("".join(pad(cell, width) for cell, width in zip(cells, widths)))
        table_rows.append((comparison.label, name))
print()
lesson.say(
    "epochs: best / run. Time counts the training passes only (not evaluation); FNN's includes "
    "its FM stage.",
    "轮数：最好的一轮 / 实际训练的轮数。时间只计训练（不含评估）；FNN 的时间包含其 FM 阶段。",
)

trained = [(run.comparison, run.name) for runs in all_runs for run in runs.values()]
lesson.claim(sorted(table_rows) == sorted(trained) and len(table_rows) == len(trained),
             f"the table has one row for each of the {len(trained)} models trained",
             f"表中对训练过的 {len(trained)} 个模型各有一行")

# fit scored the test split inside training; score it again here, all rows at once.
recomputed = 0
for runs in all_runs:
    for run in runs.values():
        test_split = run.data.test
        logits = predict_logits(run.result.model, test_split)
        again = metrics.evaluate(test_split.labels, logits, test_split.groups, from_logits=True)
        same_keys = set(again) == set(run.result.test) - {"loss"}
        recomputed += bool(len(logits) == len(test_split) and same_keys
                           and all(np.isclose(again[key], run.result.test[key], rtol=1e-12)
                                   for key in again))
test_sizes = sorted({len(run.data.test) for runs in all_runs for run in runs.values()})
lesson.claim(recomputed == len(trained),
             f"every metric in the table is computed once over the whole test split "
             f"({' and '.join(map(str, test_sizes))} rows): scoring all rows again gives the same "
             f"numbers for all {len(trained)} models",
             f"表中每个指标都是在整个测试集（{' 和 '.join(map(str, test_sizes))} 行）上一次算出的："
             f"对全部 {len(trained)} 个模型重新对所有行打分，结果相同")

best_kept = sum(
    run.result.history[run.result.best_epoch - 1]["valid_auc"]
    == max(entry["valid_auc"] for entry in run.result.history)
    and len(run.result.history) <= EPOCHS
    for runs in all_runs for run in runs.values())
lesson.claim(best_kept == len(trained),
             f"for every model the weights scored on the test split are those of the epoch with "
             f"the best validation AUC, within {EPOCHS} epochs",
             f"每个模型在测试集上评估的都是验证集 AUC 最好那一轮的权重，且不超过 {EPOCHS} 轮")

test_auc = [run.result.test["auc"] for runs in all_runs for run in runs.values()]
if not lesson.data:
    # Measured with world seeds 0 to 5 in quick mode: the lowest test AUC of any model was 0.61.
    MARGIN = 0.05
    lesson.claim(min(test_auc) > 0.5 + MARGIN,
                 f"every model's test AUC is above 0.5 + {MARGIN} (lowest {min(test_auc):.4f}): "
                 f"each one learned something real about its world",
                 f"每个模型的测试集 AUC 都高于 0.5 + {MARGIN}（最低 {min(test_auc):.4f}）："
                 f"每个模型都学到了数据中真实存在的规律")
    ceilings = [metrics.auc(c.splits.test.labels, c.splits.truth["logits"]["test"])
                for c in comparisons]
    lesson.say(
        "The true logits of the worlds score test AUC "
        + ", ".join(f"{c.label} {value:.4f}" for c, value in zip(comparisons, ceilings))
        + ": what a model that knew the truth would score.",
        "合成数据的真实 logit 的测试集 AUC 为 "
        + "，".join(f"{c.label} {value:.4f}" for c, value in zip(comparisons, ceilings))
        + "：也就是知道真相的模型会得到的分数。",
    )
else:
    lesson.say(
        "No AUC threshold is claimed on real data: the ranking depends on the data set, its "
        "size and the protocol, and a quick run trains too little to rank anything.",
        "在真实数据上不声称任何 AUC 门槛：模型排名取决于数据集、数据规模和训练流程，快速模式训练"
        "得太少，排不出名次。",
    )

# %% [markdown]
# ## 5. Validation AUC per epoch · 每轮的验证集 AUC
#
# One line per model; the dot marks the epoch whose weights were kept.
#
# 每个模型一条曲线；圆点标出被保留权重的那一轮。

# %%
lesson.section("5. Validation AUC per epoch", "5. 每轮的验证集 AUC")
# Labels inside the figure stay English: Matplotlib's bundled fonts have no CJK glyphs.
figure, axes_list = plt.subplots(1, len(comparisons), figsize=(6.5 * len(comparisons), 4.2),
                                 squeeze=False)
for axes, runs, comparison in zip(axes_list[0], all_runs, comparisons):
    for name, run in runs.items():
        epochs = [entry["epoch"] for entry in run.result.history]
        valid_auc = [entry["valid_auc"] for entry in run.result.history]
        line, = axes.plot(epochs, valid_auc, "-", marker=".", label=name)
        best = run.result.best_epoch
        axes.plot(best, valid_auc[best - 1], "o", color=line.get_color(), markersize=8)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation AUC")
    axes.set_title(comparison.title)
    axes.set_xticks(range(1, max(len(r.result.history) for r in runs.values()) + 1))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
figure.suptitle("Validation AUC per epoch (dot: the epoch kept)")
figure.tight_layout()
lesson.save_figure(figure, "validation_auc.png")

lesson.say(f"run time {time.perf_counter() - started:.1f} s",
           f"运行时间 {time.perf_counter() - started:.1f} 秒")
lesson.done()
