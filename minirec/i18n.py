"""English and Chinese text of everything the trainer and the command line print for a person.

``message(key, lang, **fields)`` looks ``key`` up in :data:`MESSAGES` and fills the
``str.format`` fields. Every key has both languages, which a test checks. Names in code,
exceptions raised by the library and file contents stay English; only lines meant for a
person reading a terminal are translated.
"""

from __future__ import annotations

import os

LANGUAGES = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # ---- training loop (minirec.train) -------------------------------------------------
    "train.progress": {
        "en": "  epoch {epoch}/{epochs}: {done}/{total} examples, {speed:,.0f} examples/s, "
              "loss so far {loss:.4f}",
        "zh": "  第 {epoch}/{epochs} 轮：{done}/{total} 个样本，每秒 {speed:,.0f} 个，"
              "目前损失 {loss:.4f}",
    },
    "train.epoch_click": {
        "en": "epoch {epoch}/{epochs}: train loss {train_loss:.4f}, valid loss "
              "{valid_loss:.4f}, valid AUC {valid_auc:.4f}, valid log loss "
              "{valid_logloss:.4f} ({seconds:.1f} s){mark}",
        "zh": "第 {epoch}/{epochs} 轮：训练损失 {train_loss:.4f}，验证损失 {valid_loss:.4f}，"
              "验证 AUC {valid_auc:.4f}，验证对数损失 {valid_logloss:.4f}（{seconds:.1f} 秒）"
              "{mark}",
    },
    "train.epoch_rating": {
        "en": "epoch {epoch}/{epochs}: train MSE {train_loss:.4f}, valid RMSE "
              "{valid_rmse:.4f}, valid MAE {valid_mae:.4f} ({seconds:.1f} s){mark}",
        "zh": "第 {epoch}/{epochs} 轮：训练均方误差 {train_loss:.4f}，验证 RMSE "
              "{valid_rmse:.4f}，验证 MAE {valid_mae:.4f}（{seconds:.1f} 秒）{mark}",
    },
    "train.best_mark": {"en": "  * best so far", "zh": "  * 目前最好"},
    "train.early_stop": {
        "en": "early stopping: validation {metric} has not improved for {patience} epoch(s)",
        "zh": "提前停止：验证 {metric} 已连续 {patience} 轮没有提高",
    },
    "train.restored": {
        "en": "restored the weights of epoch {epoch}, the best on the validation split",
        "zh": "已恢复第 {epoch} 轮的权重（验证集上最好的一轮）",
    },
    "train.test_click": {
        "en": "test: AUC {auc:.4f}, log loss {logloss:.4f}",
        "zh": "测试集：AUC {auc:.4f}，对数损失 {logloss:.4f}",
    },
    "train.test_gauc": {"en": ", GAUC {gauc:.4f}", "zh": "，GAUC {gauc:.4f}"},
    "train.test_rating": {
        "en": "test: RMSE {rmse:.4f}, MAE {mae:.4f}",
        "zh": "测试集：RMSE {rmse:.4f}，MAE {mae:.4f}",
    },

    # ---- argparse headings and its own errors -----------------------------------------
    "argparse.usage": {"en": "usage: ", "zh": "用法："},
    "argparse.positionals": {"en": "positional arguments", "zh": "位置参数"},
    "argparse.options": {"en": "options", "zh": "选项"},
    "argparse.commands": {"en": "commands", "zh": "命令"},
    "argparse.error": {"en": "{prog}: error: {text}", "zh": "{prog}：错误：{text}"},
    "argparse.required": {"en": "the following arguments are required: {names}",
                          "zh": "缺少必需的参数：{names}"},
    "argparse.unrecognized": {"en": "unrecognized arguments: {names}",
                              "zh": "无法识别的参数：{names}"},
    "argparse.invalid_choice": {"en": "invalid choice: {value} (choose from {choices})",
                                "zh": "无效的选择：{value}（可选：{choices}）"},
    "argparse.expected_one": {"en": "expected one argument", "zh": "需要一个值"},
    "argparse.argument": {"en": "argument {name}: {text}", "zh": "参数 {name}：{text}"},
    "argparse.invalid_value": {"en": "invalid {kind} value: {value}",
                               "zh": "无效的 {kind} 值：{value}"},
    "argparse.help_hint": {"en": " (see '{prog} -h')", "zh": "（参见 '{prog} -h'）"},

    # ---- help text -------------------------------------------------------------------
    "help.description": {
        "en": "minirec: deep click-through-rate models in pure NumPy, with hand-written "
              "backward passes.",
        "zh": "minirec：纯 NumPy 实现的深度点击率模型，反向传播全部手写。",
    },
    "help.help": {"en": "show this help message and exit", "zh": "显示帮助信息并退出"},
    "help.version": {"en": "show the version and exit", "zh": "显示版本并退出"},
    "help.lang": {
        "en": "language of messages: en or zh (default: from LC_ALL, LC_MESSAGES or LANG)",
        "zh": "输出语言：en 或 zh（默认依据 LC_ALL、LC_MESSAGES 或 LANG）",
    },
    "help.train": {"en": "train a model and save checkpoint, metrics and curves",
                   "zh": "训练模型，并保存检查点、指标和训练曲线"},
    "help.evaluate": {"en": "score a saved checkpoint on the test split of a data set",
                      "zh": "在数据集的测试集上评估已保存的检查点"},
    "help.gradcheck": {"en": "check every component's and model's backward pass against "
                             "finite differences",
                       "zh": "用有限差分检查每个组件和模型的反向传播"},
    "help.lessons": {"en": "list the lesson scripts", "zh": "列出课程脚本"},
    "help.model": {"en": "model to train", "zh": "要训练的模型"},
    "help.data": {
        "en": "data set: synthetic[:click|fields|interest], movielens:FOLDER, criteo:FILE, "
              "libfm:TRAIN[,VALID[,TEST]] (default: synthetic, the world that suits the "
              "model)",
        "zh": "数据集：synthetic[:click|fields|interest]、movielens:目录、criteo:文件、"
              "libfm:训练[,验证[,测试]]（默认 synthetic，按模型选合适的合成数据）",
    },
    "help.data_evaluate": {
        "en": "data set, as for train (default: the one stored in the checkpoint)",
        "zh": "数据集，写法同 train（默认使用检查点中记录的数据集）",
    },
    "help.epochs": {"en": "maximum number of epochs (default: %(default)s)",
                    "zh": "最多训练的轮数（默认 %(default)s）"},
    "help.batch_size": {"en": "mini-batch size in examples (default: %(default)s)",
                        "zh": "小批量的样本数（默认 %(default)s）"},
    "help.embedding_dim": {"en": "embedding size K (default: the model's own)",
                           "zh": "嵌入维度 K（默认使用模型自己的默认值）"},
    "help.hidden": {"en": "hidden layer widths, comma-separated, such as 200,200 "
                          "(default: the model's own)",
                    "zh": "隐藏层宽度，用逗号分隔，例如 200,200（默认使用模型自己的默认值）"},
    "help.lr": {"en": "learning rate (default: %(default)s)",
                "zh": "学习率（默认 %(default)s）"},
    "help.optimizer": {"en": "optimizer (default: %(default)s)",
                       "zh": "优化器（默认 %(default)s）"},
    "help.seed": {"en": "seed of the initial weights, the shuffling and the synthetic data "
                        "(default: %(default)s)",
                  "zh": "随机种子，决定初始权重、打乱顺序和合成数据（默认 %(default)s）"},
    "help.patience": {"en": "stop after this many epochs without a better validation AUC "
                            "(default: %(default)s)",
                      "zh": "验证 AUC 连续这么多轮没有提高就停止（默认 %(default)s）"},
    "help.out": {"en": "output folder for model.npz, metrics.json and "
                       "training_curves.png (default: runs/MODEL-DATA-TIME)",
                 "zh": "输出目录，存放 model.npz、metrics.json 和 training_curves.png"
                       "（默认 runs/模型-数据-时间）"},
    "help.metrics_json": {"en": "also write the metrics as JSON to this file",
                          "zh": "另外把指标以 JSON 格式写入这个文件"},
    "help.quiet": {"en": "print nothing but errors", "zh": "除错误外不输出任何内容"},
    "help.overwrite": {"en": "replace output files that already exist",
                       "zh": "覆盖已存在的输出文件"},
    "help.checkpoint": {"en": "checkpoint file written by 'minirec train' (model.npz)",
                        "zh": "'minirec train' 写出的检查点文件（model.npz）"},
    "help.only": {"en": "check only the cases whose name starts with this text, ignoring "
                        "case (din selects DIN, DINAttention and DINBase)",
                  "zh": "只检查名称以这段文字开头的用例，不区分大小写（din 选中 DIN、"
                        "DINAttention 和 DINBase）"},

    # ---- errors of the command line (exit status 2) ------------------------------------
    "error.prefix": {"en": "minirec: error: {text}", "zh": "minirec：错误：{text}"},
    "error.positive_int": {"en": "must be a positive integer, got {value!r}",
                           "zh": "必须是正整数，收到 {value!r}"},
    "error.non_negative_int": {"en": "must be a non-negative integer, got {value!r}",
                               "zh": "必须是非负整数，收到 {value!r}"},
    "error.positive_float": {"en": "must be a positive finite number, got {value!r}",
                             "zh": "必须是有限的正数，收到 {value!r}"},
    "error.hidden": {"en": "must be positive integers separated by commas, such as 200,200; "
                           "got {value!r}",
                     "zh": "必须是用逗号分隔的正整数，例如 200,200；收到 {value!r}"},
    "error.data_kind": {
        "en": "unknown data set {spec!r}; use synthetic[:WORLD], movielens:FOLDER, "
              "criteo:FILE or libfm:TRAIN[,VALID[,TEST]]",
        "zh": "未知的数据集 {spec!r}；可用 synthetic[:世界]、movielens:目录、criteo:文件 或 "
              "libfm:训练[,验证[,测试]]",
    },
    "error.data_path_missing": {"en": "data set {spec!r} needs a path after the colon",
                                "zh": "数据集 {spec!r} 的冒号后面需要路径"},
    "error.world": {"en": "unknown synthetic world {world!r}; available: {choices}",
                    "zh": "未知的合成数据 {world!r}；可用：{choices}"},
    "error.path_not_found": {"en": "path {path!r} not found", "zh": "找不到路径 {path!r}"},
    "error.load_failed": {"en": "could not read {kind} data from {path!r}: {reason}",
                          "zh": "无法从 {path!r} 读取 {kind} 数据：{reason}"},
    "error.loader_missing": {"en": "the {kind} loader is not available in this installation "
                                   "({reason})",
                             "zh": "当前安装中没有 {kind} 数据读取器（{reason}）"},
    "error.model_unavailable": {"en": "model {model!r} is not available: {reason}",
                                "zh": "模型 {model!r} 不可用：{reason}"},
    "error.model_option": {"en": "model {model!r} does not take {option}",
                           "zh": "模型 {model!r} 不接受 {option}"},
    "error.model_build": {"en": "cannot build model {model!r} for data {data!r}: {reason}",
                          "zh": "无法在数据 {data!r} 上构建模型 {model!r}：{reason}"},
    "error.exists": {"en": "{path!r} already exists; pass --overwrite to replace it or choose "
                           "another --out",
                     "zh": "{path!r} 已存在；加 --overwrite 覆盖它，或用 --out 换一个目录"},
    "error.exists_metrics_json": {
        "en": "{path!r} already exists; pass --overwrite to replace it or choose another "
              "--metrics-json file",
        "zh": "{path!r} 已存在；加 --overwrite 覆盖它，或用 --metrics-json 换一个文件",
    },
    "error.memory": {
        "en": "model {model!r} with {sizes} does not fit in memory ({reason}); choose smaller "
              "values",
        "zh": "模型 {model!r}（{sizes}）超出了可用内存（{reason}）；请改用更小的值",
    },
    "error.memory_defaults": {
        "en": "model {model!r} with its default sizes does not fit in memory ({reason})",
        "zh": "模型 {model!r} 使用默认大小时超出了可用内存（{reason}）",
    },
    "error.create_folder": {"en": "cannot create folder {path!r}: {reason}",
                            "zh": "无法创建目录 {path!r}：{reason}"},
    "error.not_a_folder": {"en": "--out {path!r} exists and is not a folder",
                           "zh": "--out {path!r} 已存在且不是目录"},
    "error.training": {"en": "training failed: {reason}", "zh": "训练失败：{reason}"},
    "error.evaluation": {"en": "evaluation failed: {reason}", "zh": "评估失败：{reason}"},
    "error.training_value": {"en": "training stopped: {reason}", "zh": "训练中止：{reason}"},
    "error.checkpoint": {"en": "cannot load checkpoint: {reason}",
                         "zh": "无法读取检查点：{reason}"},
    "error.stored_data_missing": {
        "en": "path {path!r} of the data set recorded in the checkpoint ({spec}) not found; "
              "pass --data with the data set's current location",
        "zh": "找不到检查点中记录的数据集（{spec}）的路径 {path!r}；请用 --data 指定数据集"
              "现在的位置",
    },
    "error.no_data_spec": {"en": "the checkpoint records no data set; pass --data",
                           "zh": "检查点中没有记录数据集；请用 --data 指定"},
    "error.schema_mismatch": {
        "en": "the fields of data {data!r} do not match the checkpoint's ({reason}); evaluate "
              "on the data set the model was trained on",
        "zh": "数据 {data!r} 的字段与检查点不一致（{reason}）；请在训练模型时所用的数据集上评估",
    },
    "error.vocab_mismatch": {
        "en": "the vocabularies built from data {data!r} differ from the checkpoint's "
              "(fields: {fields}), so ids would mean different values; evaluate on the data "
              "set the model was trained on",
        "zh": "由数据 {data!r} 构建的词表与检查点中的不同（字段：{fields}），"
              "同一个 id 会对应不同的取值；请在训练模型时所用的数据集上评估",
    },
    "error.empty_test": {"en": "the test split of {data!r} is empty",
                         "zh": "{data!r} 的测试集为空"},

    # ---- train and evaluate output ---------------------------------------------------
    "train.start": {
        "en": "training {model} on {data}: {train} training, {valid} validation, {test} test "
              "examples; {params:,} parameters",
        "zh": "在 {data} 上训练 {model}：训练集 {train} 个、验证集 {valid} 个、测试集 {test} "
              "个样本；参数 {params:,} 个",
    },
    "train.stage_one": {"en": "FNN stage one: training an FM to initialise the embeddings",
                        "zh": "FNN 第一阶段：先训练一个 FM，用它初始化嵌入"},
    "train.stage_two": {"en": "FNN stage two: training the FNN built from the FM",
                        "zh": "FNN 第二阶段：训练由 FM 初始化的 FNN"},
    "train.movielens_no_sequence": {
        "en": "{model} does not read behaviour sequences; using the MovieLens fields "
              "without them: {fields}",
        "zh": "{model} 不使用行为序列；只用 MovieLens 中的非序列字段：{fields}",
    },
    "train.summary": {
        "en": "best epoch {best_epoch} of {epochs_run}; {seconds:.1f} s of training, "
              "{speed:,.0f} examples/s",
        "zh": "最好的是第 {best_epoch} 轮（共 {epochs_run} 轮）；训练用时 {seconds:.1f} 秒，"
              "每秒 {speed:,.0f} 个样本",
    },
    "train.wrote": {"en": "wrote {path}", "zh": "已写入 {path}"},
    "evaluate.header": {"en": "{model} from {path} on the test split of {data} "
                              "({rows} examples)",
                        "zh": "检查点 {path} 中的 {model}，在 {data} 的测试集上"
                              "（{rows} 个样本）"},
    "evaluate.metric": {"en": "  {name}: {value:.4f}", "zh": "  {name}：{value:.4f}"},
    # Labels of the metric keys that evaluate() returns, worded as in train's lines.
    "metric.loss": {"en": "loss", "zh": "损失"},
    "metric.auc": {"en": "AUC", "zh": "AUC"},
    "metric.logloss": {"en": "log loss", "zh": "对数损失"},
    "metric.gauc": {"en": "GAUC", "zh": "GAUC"},
    "metric.rmse": {"en": "RMSE", "zh": "RMSE"},
    "metric.mae": {"en": "MAE", "zh": "MAE"},

    # ---- gradcheck -------------------------------------------------------------------
    "gradcheck.header": {
        "en": "{name}  {error}  {checked}  {status}  worst entry",
        "zh": "{name}  {error}  {checked}  {status}  最差的元素",
    },
    "gradcheck.column_name": {"en": "case", "zh": "用例"},
    "gradcheck.column_error": {"en": "max rel err", "zh": "最大相对误差"},
    "gradcheck.column_checked": {"en": "checked", "zh": "检查数"},
    "gradcheck.column_status": {"en": "result", "zh": "结果"},
    "gradcheck.pass": {"en": "ok", "zh": "通过"},
    "gradcheck.fail": {"en": "FAIL", "zh": "失败"},
    "gradcheck.crashed": {"en": "{name}: the check raised {error}",
                          "zh": "{name}：检查时出错 {error}"},
    "gradcheck.missing": {"en": "case file(s) not found, skipped: {modules}",
                          "zh": "未找到用例文件，已跳过：{modules}"},
    "gradcheck.broken": {"en": "case file {module} could not be loaded: {error}",
                         "zh": "用例文件 {module} 无法加载：{error}"},
    "gradcheck.none": {"en": "no gradient-check cases found", "zh": "没有找到梯度检查用例"},
    "gradcheck.no_match": {
        "en": "no case name starts with {only!r} (ignoring case); names include: {names}",
        "zh": "没有名称以 {only!r} 开头的用例（不区分大小写）；现有名称包括：{names}",
    },
    "gradcheck.summary_ok": {
        "en": "all {count} checks passed: every relative error is below {tolerance:g}",
        "zh": "全部 {count} 项检查通过：每个相对误差都小于 {tolerance:g}",
    },
    "gradcheck.summary_fail": {
        "en": "{failed} of {count} checks failed (relative error >= {tolerance:g} or an error)",
        "zh": "{count} 项检查中有 {failed} 项失败（相对误差 >= {tolerance:g} 或出错）",
    },

    # ---- lessons ---------------------------------------------------------------------
    "lessons.header": {"en": "lessons in {folder}:", "zh": "{folder} 中的课程："},
    "lessons.none_folder": {
        "en": "no lessons folder at {folder}; the lessons ship with the source repository, "
              "not with an installed package",
        "zh": "{folder} 处没有 lessons 目录；课程脚本随源码仓库提供，不随安装包提供",
    },
    "lessons.empty": {"en": "no lesson scripts in {folder}", "zh": "{folder} 中没有课程脚本"},
    "lessons.untitled": {"en": "(no title)", "zh": "（无标题）"},
    "lessons.run_hint": {"en": "run one with: python {example} [--quick] [--lang en|zh]",
                         "zh": "运行方法：python {example} [--quick] [--lang en|zh]"},
}


def check_language(lang: str) -> str:
    """Return ``lang`` if it is ``en`` or ``zh``, else raise ValueError."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang


def message(key: str, lang: str = "en", **fields) -> str:
    """Return the text of ``key`` in ``lang`` with ``fields`` filled in."""
    try:
        entry = MESSAGES[key]
    except KeyError:
        raise KeyError(f"no message {key!r} in the catalogue") from None
    return entry[check_language(lang)].format(**fields)


def default_language(environ=None) -> str:
    """Return ``zh`` when the locale variables name a Chinese locale, else ``en``.

    LC_ALL, LC_MESSAGES and LANG are read in that order (the POSIX precedence), and the
    first non-empty one decides.
    """
    environ = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"
