"""Support for the lesson scripts: bilingual output, tensor printing, checked claims, figures.

A lesson creates one :class:`Lesson` from its command line. It calls ``say`` for
explanations, ``show`` for every intermediate tensor and ``agree`` to compare a hand
computation with the library. ``gradcheck`` prints a relative error beside the size to
expect, and ``claim`` checks every statement the lesson prints, so a lesson that stops
being true raises instead of printing something false.

The command line of every lesson is the same::

    python lessons/NN_name.py [--quick] [--lang en|zh] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .i18n import default_language

LANGUAGES = ("en", "zh")


def _language_in(argv) -> str | None:
    """Return the value of ``--lang`` in ``argv`` before parsing, so help can use it."""
    for index, argument in enumerate(argv):
        if argument.startswith("--lang="):
            value = argument.split("=", 1)[1]
        elif argument == "--lang" and index + 1 < len(argv):
            value = argv[index + 1]
        else:
            continue
        return value if value in LANGUAGES else None
    return None


class LessonClaimError(AssertionError):
    """Raised when a claim a lesson prints turns out false."""


class Lesson:
    """The state of one lesson run: language, quick mode and the figure folder.

    Parameters
    ----------
    name : str
        The lesson's file stem, such as ``"02_deepfm"``; figures go to ``out/name/``.
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).
    description : str or (str, str)
        The lesson's title for ``--help``: one string, or the English and Chinese titles.
    """

    def __init__(self, name: str, argv=None, *, description=""):
        argv = sys.argv[1:] if argv is None else list(argv)
        lang = _language_in(argv) or default_language()
        zh = lang == "zh"
        if isinstance(description, (tuple, list)):
            description = description[1] if zh else description[0]
        parser = argparse.ArgumentParser(prog=f"python lessons/{name}.py",
                                         description=description)
        parser.add_argument("--quick", action="store_true",
                            help="用更小的数据、更少的轮数训练（几秒内完成）" if zh else
                            "train on smaller data for fewer epochs (a few seconds)")
        parser.add_argument("--lang", choices=LANGUAGES, default=None,
                            help="讲解使用的语言（默认跟随区域设置）" if zh else
                            "language of the explanations (default: from the locale)")
        parser.add_argument("--out", default="lesson-figures",
                            help="PNG 图片的保存文件夹，每次运行会重写本课的图片"
                                 "（默认：lesson-figures）" if zh else
                            "folder for the PNG figures, rewritten on each run "
                            "(default: lesson-figures)")
        parser.add_argument("--data", default=None,
                            help="MovieLens 数据文件夹的路径，供使用它的课程读取" if zh else
                            "path of a MovieLens folder, for the lessons that use one")
        args = parser.parse_args(argv)
        self.name = name
        self.quick = bool(args.quick)
        self.lang = args.lang or lang
        self.out = Path(args.out) / name
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(self.text(f"--out: cannot create the folder {self.out}: "
                                   f"{error.strerror or error}",
                                   f"--out：无法创建文件夹 {self.out}：{error.strerror or error}"))
        self.data = args.data
        self.claims_checked = 0
        np.set_printoptions(precision=4, suppress=True, linewidth=100)

    # ----- text ---------------------------------------------------------------------------
    def text(self, en: str, zh: str) -> str:
        """Return ``en`` or ``zh`` for the lesson's language."""
        return zh if self.lang == "zh" else en

    def say(self, en: str, zh: str) -> None:
        """Print one explanation in the lesson's language."""
        print(self.text(en, zh))

    def section(self, en: str, zh: str) -> None:
        """Print a section heading."""
        title = self.text(en, zh)
        print()
        print(title)
        print("=" * max(8, len(title.encode("utf-8")) // 2 + len(title) // 2))

    def show(self, name: str, value) -> np.ndarray:
        """Print a tensor with its name and shape, and return it."""
        array = np.asarray(value)
        body = np.array2string(array, prefix="    ")
        print(f"{name}  shape={array.shape}")
        print("    " + body)
        return array

    # ----- checks -------------------------------------------------------------------------
    def claim(self, condition, en: str, zh: str) -> None:
        """Print a statement and raise LessonClaimError unless ``condition`` holds."""
        statement = self.text(en, zh)
        if not bool(condition):
            raise LessonClaimError(f"{self.name}: claim failed: {statement}")
        self.claims_checked += 1
        print(f"  [ok] {statement}")

    def agree(self, name: str, by_hand, by_library, *, rtol=1e-10, atol=1e-12) -> float:
        """Print the largest difference of two computations of ``name`` and claim they agree."""
        by_hand = np.asarray(by_hand, dtype=np.float64)
        by_library = np.asarray(by_library, dtype=np.float64)
        if by_hand.shape != by_library.shape:
            raise LessonClaimError(
                f"{self.name}: {name}: by hand {by_hand.shape} vs library {by_library.shape}"
            )
        difference = float(np.max(np.abs(by_hand - by_library))) if by_hand.size else 0.0
        self.claim(np.allclose(by_hand, by_library, rtol=rtol, atol=atol),
                   f"{name}: by hand and minirec agree (largest difference {difference:.1e})",
                   f"{name}：手算与 minirec 一致（最大差 {difference:.1e}）")
        return difference

    def gradcheck(self, result, *, tolerance: float = 1e-6) -> None:
        """Print a gradient check's worst relative error beside the size to expect."""
        self.claim(result.max_error < tolerance,
                   f"{result.name}: worst relative error {result.max_error:.1e} "
                   f"(expect below {tolerance:.0e}; a wrong gradient gives about 1) "
                   f"over {result.checked} entries",
                   f"{result.name}：最大相对误差 {result.max_error:.1e}"
                   f"（应低于 {tolerance:.0e}；梯度写错时约为 1），共检查 {result.checked} 个元素")

    # ----- figures ------------------------------------------------------------------------
    def figure_path(self, filename: str) -> Path:
        """Return the path for a figure file, creating the lesson's folder."""
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / filename

    def save_figure(self, figure, filename: str) -> Path:
        """Save a Matplotlib figure as PNG in the lesson's folder and close it."""
        import matplotlib.pyplot as plt

        path = self.figure_path(filename)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        self.say(f"figure written: {path}", f"图已保存：{path}")
        return path

    def done(self) -> None:
        """Print the closing line with the number of claims checked."""
        print()
        self.say(f"{self.name}: all {self.claims_checked} claims hold.",
                 f"{self.name}：全部 {self.claims_checked} 条结论成立。")


def use_agg_backend() -> None:
    """Select Matplotlib's non-interactive Agg backend, so no window ever opens."""
    import matplotlib

    matplotlib.use("Agg")
