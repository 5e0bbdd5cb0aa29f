"""Peak resident memory of training DeepFM on the MovieLens click task.

Every configuration runs in a fresh interpreter, which reports its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the high-water mark over the process's
whole life) at the end:

- baseline: import NumPy and minirec, load nothing;
- one run per (dtype, batch size): load the task with ``movielens_click_task``, drop the
  behaviour sequences (DeepFM does not read them), build DeepFM and train one epoch with
  ``minirec.train.fit`` (Adam, validation after the epoch, test at the end).

Printed beside each peak are the bytes of the loaded data arrays, the bytes of the
parameters and the budget ``3 * (data + parameters) + baseline``. The data counts every
column, label and group array of the three splits, sequences included, because the
loader builds them and they stay resident until dropped. Target: peak within the budget.
Resetting VmHWM (to measure the training alone) also resets ``ru_maxrss``, so the peak
printed is the larger of the peak after loading and the peak at the end. Without the
MovieLens folder only the baseline runs, and --data points at another folder.

Run:  python benchmarks/memory.py [--quick] [--threads 1] [--data PATH]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import _setup

CONFIGURATIONS = (("float32", 256), ("float32", 4096), ("float64", 256))
QUICK_CONFIGURATIONS = (("float32", 4096),)
BUDGET_FACTOR = 3


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size in bytes (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def proc_status_bytes(key: str) -> int | None:
    """Return a memory line of /proc/self/status (VmRSS, VmHWM) in bytes, None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs "5"); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def dataset_bytes(dataset) -> int:
    """Return the bytes of a Dataset's columns, labels and groups."""
    total = sum(column.nbytes for column in dataset.columns.values()) + dataset.labels.nbytes
    return int(total + (dataset.groups.nbytes if dataset.groups is not None else 0))


def child_baseline() -> dict:
    import numpy  # noqa: F401

    import minirec  # noqa: F401
    import minirec.models.deepfm  # noqa: F401
    import minirec.train  # noqa: F401
    return {"peak": peak_rss_bytes()}


def child_train(path: str, dtype_name: str, batch_size: int, max_rows: int | None) -> dict:
    import numpy as np

    from minirec.data.movielens import movielens_click_task
    from minirec.models.deepfm import DeepFM
    from minirec.train import fit

    full = movielens_click_task(path)
    peak_after_loading = peak_rss_bytes()
    data_bytes = sum(dataset_bytes(split) for split in (full.train, full.valid, full.test))
    splits = full.without_sequences()
    del full
    if max_rows is not None:
        splits.train = splits.train.take(np.arange(min(max_rows, len(splits.train))))
    # From here on, VmHWM measures the training alone (model, optimizer, fit's batches).
    rss_before_training = proc_status_bytes("VmRSS") if reset_peak() else None
    model = DeepFM(splits.schema, random_state=0, dtype=np.dtype(dtype_name))
    parameter_bytes = int(sum(value.nbytes for _, value, _ in model.parameters()))
    result = fit(model, splits, epochs=1, batch_size=batch_size, verbose=False)
    training_peak = proc_status_bytes("VmHWM") if rss_before_training else None
    training_growth = None if training_peak is None else training_peak - rss_before_training
    # Resetting VmHWM resets ru_maxrss too, so the process peak is the larger of the two.
    return {"peak": max(peak_rss_bytes(), peak_after_loading), "loading_peak": peak_after_loading,
            "training_growth": training_growth,
            "data": data_bytes, "parameters": parameter_bytes,
            "used_data": sum(dataset_bytes(s) for s in (splits.train, splits.valid,
                                                        splits.test)),
            "valid_auc": result.valid.get("auc")}


def run_child(arguments: list[str]) -> dict | None:
    completed = subprocess.run([sys.executable, __file__, "--child", *arguments],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        print(f"configuration {arguments} failed:\n{completed.stderr.strip()}")
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def megabytes(value: int) -> str:
    return f"{value / 2**20:8.1f}"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _setup.set_threads(int(sys.argv[2]))
        if sys.argv[3] == "baseline":
            print(json.dumps(child_baseline()))
        else:
            max_rows = None if sys.argv[7] == "all" else int(sys.argv[7])
            print(json.dumps(child_train(sys.argv[4], sys.argv[5], int(sys.argv[6]),
                                         max_rows)))
        return 0

    parser = _setup.make_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    settings = _setup.set_threads(args.threads)
    _setup.print_machine(None)
    _setup.print_settings(settings, None)
    from pathlib import Path

    baseline = run_child([str(args.threads), "baseline"])
    if baseline is None:
        return 1
    print(f"baseline (import numpy and minirec): {megabytes(baseline['peak'])} MB peak RSS")
    if not Path(args.data).is_dir():
        print(f"MovieLens folder {args.data} not found; the training runs were skipped")
        return 0

    configurations = QUICK_CONFIGURATIONS if args.quick else CONFIGURATIONS
    # --quick trains on the first 20,000 rows only; the task is still loaded whole.
    max_rows = "20000" if args.quick else "all"
    print(f"DeepFM on {args.data}, one epoch of training"
          + (" on the first 20,000 rows" if args.quick else ""))
    header = (f"{'dtype':8s} {'batch':>6s} {'peak MB':>8s} {'load MB':>8s} {'data MB':>8s} "
              f"{'params MB':>9s} {'budget MB':>9s} {'peak - base':>11s} {'/(data+params)':>14s}"
              f" {'train MB':>8s}  target")
    print(header)
    print("-" * len(header))
    verdicts = []
    used_data = 0
    for dtype_name, batch_size in configurations:
        result = run_child([str(args.threads), "train", args.data, dtype_name,
                            str(batch_size), max_rows])
        if result is None:
            verdicts.append(False)
            continue
        resident = result["data"] + result["parameters"]
        budget = BUDGET_FACTOR * resident + baseline["peak"]
        over_baseline = result["peak"] - baseline["peak"]
        met = result["peak"] <= budget
        verdicts.append(met)
        print(f"{dtype_name:8s} {batch_size:6d} {megabytes(result['peak'])} "
              f"{megabytes(result['loading_peak'])} {megabytes(result['data'])} "
              f"{megabytes(result['parameters']):>9s} {megabytes(budget):>9s} "
              f"{megabytes(over_baseline):>11s} {over_baseline / resident:13.2f}x "
              f"{megabytes(result['training_growth']) if result['training_growth'] else '   n/a':>8s}"
              f"  {'met' if met else 'MISSED'}")
        used_data = result["used_data"]
    print("\n'load MB' is the peak right after movielens_click_task returned, before the "
          "model exists. 'train MB' is how far the peak rose above the resident memory at the "
          "start of training (model, Adam state, batches; /proc/self VmHWM after a reset). "
          "'data' counts every array of the loaded task; DeepFM reads "
          f"{used_data / 2**20:.1f} MB of it (the sequences are dropped before training).")
    print(f"targets met: {sum(verdicts)} of {len(verdicts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
