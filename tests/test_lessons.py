"""Every lesson script runs in quick mode in both languages, and ``minirec lessons`` lists it.

The lessons run as subprocesses, as a student runs them:
``python lessons/NN_name.py --quick --lang en|zh --out DIR``. Each quick run takes a few
seconds. The first test that needs a run starts all the runs the selected tests need, two
at a time because each run is single-threaded. The file therefore takes about half the sum
of the run times.
"""

import ast
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from minirec.cli import main

REPO = Path(__file__).resolve().parents[1]
LESSONS = sorted((REPO / "lessons").glob("[0-9][0-9]_*.py"))
LANGUAGES = ("en", "zh")
# A quick run takes about 4 s; the limit only stops a lesson that hangs.
TIMEOUT_SECONDS = 300
PARALLEL_RUNS = 2
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
PARENTHESISED = re.compile(r"\([^()]*\)")


@dataclass
class LessonRun:
    """The outcome of one quick run of a lesson."""

    returncode: int
    stdout: str
    stderr: str
    out: Path
    seconds: float


def run_lesson(path: Path, lang: str, out: Path) -> LessonRun:
    """Run one lesson in quick mode with the language ``lang`` and figures under ``out``."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONIOENCODING="utf-8",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(path), "--quick", "--lang", lang, "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, encoding="utf-8",
        timeout=TIMEOUT_SECONDS,
    )
    return LessonRun(completed.returncode, completed.stdout, completed.stderr, out,
                     time.perf_counter() - started)


def wanted_runs(request) -> set:
    """Return the (lesson file name, language) pairs the selected tests of this file need."""
    wanted = set()
    for item in request.session.items:
        if item.module is not request.module or "lesson_runs" not in item.fixturenames:
            continue
        params = item.callspec.params
        languages = [params["lang"]] if "lang" in params else LANGUAGES
        wanted.update((params["lesson"].name, lang) for lang in languages)
    return wanted


@pytest.fixture(scope="module")
def lesson_runs(request, tmp_path_factory):
    """Start every quick run the selected tests need; return {(file name, lang): future}."""
    paths = {path.name: path for path in LESSONS}
    executor = ThreadPoolExecutor(max_workers=PARALLEL_RUNS)
    futures = {}
    for name, lang in sorted(wanted_runs(request)):
        out = tmp_path_factory.mktemp(f"{Path(name).stem}-{lang}")
        futures[name, lang] = executor.submit(run_lesson, paths[name], lang, out)
    yield futures
    executor.shutdown(wait=True, cancel_futures=True)


def get_run(lesson_runs, lesson: Path, lang: str) -> LessonRun:
    return lesson_runs[lesson.name, lang].result()


def claims_line(stdout: str, stem: str, lang: str):
    """Return the number of claims in the closing line of lesson.done(), or None if absent."""
    if lang == "en":
        pattern = rf"^{re.escape(stem)}: all (\d+) claims hold\.$"
    else:
        pattern = rf"^{re.escape(stem)}：全部 (\d+) 条结论成立。$"
    match = re.search(pattern, stdout, re.MULTILINE)
    return int(match[1]) if match else None


def without_parentheses(line: str) -> str:
    """Remove parenthesised text, nested too, where an English line may give a Chinese term."""
    while True:
        shorter = PARENTHESISED.sub("", line)
        if shorter == line:
            return line
        line = shorter


def module_constants(path: Path) -> dict:
    """Return the module-level ``NAME = "string"`` constants of a file, without running it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            constants[node.targets[0].id] = node.value.value
    return constants


lesson_files = pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])


# --------------------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------------------

def test_lessons_found():
    numbers = [path.name[:2] for path in LESSONS]
    assert LESSONS, f"no lessons/NN_*.py files in {REPO / 'lessons'}"
    assert len(set(numbers)) == len(numbers), f"two lessons share a number: {numbers}"


@lesson_files
def test_lesson_percent_format(lesson):
    lines = lesson.read_text(encoding="utf-8").splitlines()
    assert "# %%" in lines, "no code cell marker '# %%'"
    assert "# %% [markdown]" in lines, "no markdown cell marker '# %% [markdown]'"
    in_markdown = False
    for number, line in enumerate(lines, start=1):
        if line.startswith("# %%"):
            in_markdown = line == "# %% [markdown]"
        elif in_markdown:
            assert line == "" or line.startswith("#"), \
                f"line {number} of a markdown cell is not a comment: {line!r}"


@lesson_files
def test_lesson_titles_in_both_languages(lesson):
    constants = module_constants(lesson)
    assert constants.get("TITLE_EN"), "TITLE_EN is missing or empty"
    assert constants.get("TITLE_ZH"), "TITLE_ZH is missing or empty"
    assert not CJK.search(constants["TITLE_EN"]), constants["TITLE_EN"]
    assert CJK.search(constants["TITLE_ZH"]), constants["TITLE_ZH"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_lessons_command_lists_every_lesson(lang, capsys):
    assert main(["lessons", "--lang", lang]) == 0
    output = capsys.readouterr().out
    listed = {line.split(None, 1)[0]: line.split(None, 1)[1]
              for line in output.splitlines()[1:] if re.match(r"^\s+\S+\.py\s", line)}
    key = "TITLE_EN" if lang == "en" else "TITLE_ZH"
    for lesson in LESSONS:
        assert lesson.name in listed, f"{lesson.name} not listed:\n{output}"
        assert listed[lesson.name] == module_constants(lesson)[key]


# --------------------------------------------------------------------------------------
# the quick runs
# --------------------------------------------------------------------------------------

@lesson_files
@pytest.mark.parametrize("lang", LANGUAGES)
def test_lesson_quick_run(lesson, lang, lesson_runs):
    run = get_run(lesson_runs, lesson, lang)
    assert run.returncode == 0, \
        f"exit status {run.returncode}\n--- stdout (end)\n{run.stdout[-3000:]}\n" \
        f"--- stderr (end)\n{run.stderr[-3000:]}"
    assert list(run.out.rglob("*.png")), f"no PNG figure under {run.out}"
    assert "missing from font" not in run.stderr, "a figure contains glyphs its font lacks"

    claims = claims_line(run.stdout, lesson.stem, lang)
    assert claims is not None, f"no closing line of lesson.done() in {lang}:\n{run.stdout[-2000:]}"
    checked = [line for line in run.stdout.splitlines() if line.startswith("  [ok] ")]
    assert claims == len(checked) > 0


@lesson_files
def test_lesson_explains_in_english(lesson, lesson_runs):
    run = get_run(lesson_runs, lesson, "en")
    assert run.returncode == 0, run.stderr[-3000:]
    # Chinese may appear only as a term in brackets beside the English one: "field (特征域)".
    chinese = [line for line in run.stdout.splitlines() if CJK.search(without_parentheses(line))]
    assert not chinese, f"Chinese outside brackets in the English run: {chinese[:3]}"


@lesson_files
def test_lesson_explains_in_chinese(lesson, lesson_runs):
    run = get_run(lesson_runs, lesson, "zh")
    assert run.returncode == 0, run.stderr[-3000:]
    checked = [line for line in run.stdout.splitlines() if line.startswith("  [ok] ")]
    untranslated = [line for line in checked if not CJK.search(line)]
    assert checked and not untranslated, f"claims without Chinese: {untranslated[:3]}"
    assert claims_line(run.stdout, lesson.stem, "en") is None


@lesson_files
def test_lesson_claims_same_in_both_languages(lesson, lesson_runs):
    english = get_run(lesson_runs, lesson, "en")
    chinese = get_run(lesson_runs, lesson, "zh")
    assert english.returncode == 0, english.stderr[-3000:]
    assert chinese.returncode == 0, chinese.stderr[-3000:]
    assert claims_line(english.stdout, lesson.stem, "en") \
        == claims_line(chinese.stdout, lesson.stem, "zh")
