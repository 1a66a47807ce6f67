"""Does distillation pay off: four tasks, the shipped settings, transfer sets, a T x alpha grid.

    .venv/bin/python bench/distill.py [--seeds 0 1 2] [--only NAME ...] [--out bench/results]
        [--work bench/work/distill] [--temperatures 1 2 4] [--alphas 0.5 0.9 1.0]
        [--synthetic-ratios 1] [--distill-steps N] [--train-steps N]

Tasks: the three taxi ones of bench/teachers.py (the demo's binary label;
`--label payment_type`, multi-class; `--label fare`, regression) and
`synthetic`, bench/synthetic_data.py's binary table (3,000 labelled rows, a
tree-friendly label, 30,000 unlabeled rows). Each task's Transform outputs
come from one tiny `tfx-distill run` (bench/teachers.py's `Task`). For each
seed, on them:

- teachers, each trained by the pipeline's own `run_fn`: the shipped
  zero-code teacher (gradient-boosted trees; with the task's shipped
  `teacher_folds`, the regression label's 5, it also fits the out-of-fold
  models, whose outputs label the train split as the Distiller's `OutOfFold`
  does), the MLP teacher, and their `teacher.Ensemble` (the mean of their
  logits; out of fold for the trees' part where they have folds, as the
  executor does). Each is scored on eval.
- students, built by the pipeline's `build_student` with that seed and
  trained by the Distiller's own loop (`training.Distillation`) for the
  shipped steps / batch / learning rate on cached teacher outputs: from
  scratch (alpha 0); distilled as shipped (the shipped teacher, T, alpha);
  distilled from the ensemble; as shipped plus a transfer set of synthetic
  rows (`transfer.synthetic_rows` over the train split, labelled by the
  shipped teacher, `transfer.write`, `transfer.mix`), per synthetic ratio;
  on `synthetic` also plus the unlabeled rows (serialized as ExampleGen
  would, read by `data.unlabeled_dataset` + `transfer.unlabeled_rows`), and
  unlabeled plus synthetic rows. Same number of steps with or without a
  transfer set: the transfer rows take part of each batch.
- a T x alpha grid from the shipped teacher (the cell of the shipped T and
  alpha is the "distilled (shipped)" student itself), to choose defaults
  across tasks: by the mean over tasks of each cell's rank on the task's main
  metric.

The Distiller-side cost of a transfer set: seconds of (teacher-output cache
pass + training) without it vs (cache pass + labelling the transfer set +
training) with it, same steps. Scores as bench/teachers.py computes them on
the whole eval split: binary AUC / accuracy / log loss, multi-class accuracy /
log loss, regression MSE / MAE. The JSON is rewritten after every task.
Writes distill.json, distill.md, distill.png (`distill-<names>` with --only;
`--combine A.json B.json` writes distill.* from such runs, e.g. two run side
by side on two cores).
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import time
from typing import Dict, List, Optional


# tf-keras, as the pipeline uses it, before anything imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import _common  # pylint: disable=g-bad-import-order  # bench/_common.py
import synthetic_data  # pylint: disable=g-bad-import-order
import teachers as teachers_bench  # pylint: disable=g-bad-import-order

TASKS = {**teachers_bench.TASKS, "synthetic": None}  # synthetic: flags at run time
MAIN_METRIC = teachers_bench.MAIN_METRIC
TEACHERS = ("gbt teacher", "mlp teacher", "ensemble teacher")
SHIPPED = "distilled (shipped)"
READ_BATCH = teachers_bench.READ_BATCH  # soft_labels.READ_BATCH_SIZE too


def log(message: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def student_methods(name: str, ratios: List[float]) -> List[str]:
  methods = ["scratch", SHIPPED, "from ensemble"]
  methods += [f"+ synthetic x{r:g}" for r in ratios]
  if name == "synthetic":
    methods += ["+ unlabeled"] + [f"+ unlabeled + synthetic x{r:g}" for r in ratios]
  return methods


def grid_key(temperature: float, alpha: float) -> str:
  return f"T={temperature:g} alpha={alpha:g}"


class DistillTask(teachers_bench.Task):
  """teachers.py's Task, with students trained on any dataset, any T / alpha,
  and the transfer sets of transfer.py."""

  def cache_counted(self, logits_fn, name: str):
    """(path, examples, seconds) of the teacher-output cache of the train split."""
    from distill_components.distiller import teacher_cache  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.work, "cache", name)
    shutil.rmtree(path, ignore_errors=True)
    start = time.monotonic()
    count = teacher_cache.write(logits_fn, self.dataset(self.fn_args.train_files), path)
    return path, count, time.monotonic() - start

  def transfer_set(self, teacher, name: str, seed: int, ratio: float = 0.0,
                   unlabeled_files: Optional[List[str]] = None, out_of_fold=None):
    """(path, rows by source, seconds): the transfer set labelled by `teacher`
    (synthetic rows by `out_of_fold`, their base rows' fold models, when the
    teacher has them), made as the executor's `_write_transfer_set` makes it."""
    # pylint: disable=g-import-not-at-top
    from distill_components.distiller import data
    from distill_components.distiller import export
    from distill_components.distiller import transfer
    # pylint: enable=g-import-not-at-top
    spec = export.model_input_spec(self.tft_output, self.label_key)
    path = os.path.join(self.work, "transfer", name)
    shutil.rmtree(path, ignore_errors=True)
    sources = {}
    start = time.monotonic()
    if unlabeled_files:
      dataset = data.unlabeled_dataset(
          unlabeled_files, self.tft_output,
          raw_label_keys=self.settings.serving_excluded, model_inputs=spec,
          batch_size=READ_BATCH)
      sources[transfer.UNLABELED] = lambda: transfer.unlabeled_rows(dataset, teacher.logits)
    if ratio:
      sources[transfer.SYNTHETIC] = lambda: transfer.synthetic_rows(
          self.dataset(self.fn_args.train_files), (out_of_fold or teacher).logits, ratio,
          seed=seed)
    counts = transfer.write(sources, spec, teacher.width, path)
    return path, counts, time.monotonic() - start

  def train_student(self, build_student, train_data, seed: int, alpha: float,
                    temperature: float):
    """(student, seconds of training) by the Distiller's loop, shipped steps."""
    # pylint: disable=g-import-not-at-top
    import tensorflow as tf
    from distill_components.distiller import training
    # pylint: enable=g-import-not-at-top
    s = self.settings
    tf.keras.utils.set_random_seed(seed)
    self.fn_args.custom_config = s.module_config()
    student = build_student(self.fn_args)
    start = time.monotonic()
    training.Distillation(
        student, None, task=self.task, alpha=alpha, temperature=temperature,
        optimizer=tf.keras.optimizers.Adam(s.learning_rate),
    ).fit(train_data, s.distill_steps)
    return student, time.monotonic() - start


def _infer_type(values: List[str]) -> str:
  """int / float / bytes, as CsvExampleGen infers a column's type."""
  present = [v for v in values if v != ""]
  for kind, parse in (("int", int), ("float", float)):
    try:
      for v in present:
        parse(v)
      return kind
    except ValueError:
      continue
  return "bytes"


def csv_to_tfrecord(csv_path: str, out_dir: str, raw_feature_spec) -> List[str]:
  """The CSV's rows as gzipped TFRecord tf.Examples, typed as ExampleGen
  infers them (int64 / float / bytes), empty cells absent; checked against
  the raw schema the Transform graph was made with. Returns the file."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with open(csv_path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(reader)
  types = {col: _infer_type([r[i] for r in rows]) for i, col in enumerate(header)}
  want = {tf.int64: "int", tf.float32: "float", tf.string: "bytes"}
  for col, kind in types.items():
    if col in raw_feature_spec and want[raw_feature_spec[col].dtype] != kind:
      raise ValueError(f"Column {col!r}: {kind} in {csv_path}, "
                       f"{raw_feature_spec[col].dtype.name} in the raw schema.")
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "data_tfrecord-00000-of-00001.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for row in rows:
      feature = {}
      for col, value in zip(header, row):
        if value == "":
          continue
        kind = types[col]
        if kind == "int":
          feature[col] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        elif kind == "float":
          feature[col] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
        else:
          feature[col] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
      writer.write(tf.train.Example(
          features=tf.train.Features(feature=feature)).SerializeToString())
  return [path]


def _summary(values: List[float]) -> Dict[str, float]:
  return {"mean": statistics.mean(values),
          "std": statistics.stdev(values) if len(values) > 1 else 0.0,
          "values": values}


def run_task(task: DistillTask, args, unlabeled_csv: Optional[str]) -> dict:
  # pylint: disable=g-import-not-at-top
  from distill_components.distiller import teacher as teacher_lib
  from distill_components.distiller import teacher_cache
  from distill_components.distiller import transfer
  # pylint: enable=g-import-not-at-top
  s = task.settings
  mlp_fn, tree_fn, build_student = task.modules()
  methods = student_methods(task.name, args.synthetic_ratios)
  grid = [(t, a) for t in args.temperatures for a in args.alphas]
  runs: Dict[str, List[Dict[str, float]]] = {m: [] for m in (*TEACHERS, *methods)}
  grid_runs: Dict[str, List[Dict[str, float]]] = {grid_key(*c): [] for c in grid}
  costs: Dict[str, List[float]] = {}
  seconds: Dict[str, Dict[str, List[float]]] = {}
  transfer_rows: Dict[str, List[int]] = {}

  def cost(key, value):
    costs.setdefault(key, []).append(value)

  def timed(method, cache_s, transfer_s, train_s):
    for key, value in (("cache", cache_s), ("transfer", transfer_s), ("train", train_s),
                       ("total", cache_s + transfer_s + train_s)):
      seconds.setdefault(method, {}).setdefault(key, []).append(value)

  unlabeled_files = None
  if unlabeled_csv:
    unlabeled_files = csv_to_tfrecord(unlabeled_csv, os.path.join(task.work, "unlabeled"),
                                      task.tft_output.raw_feature_spec())
  for seed in args.seeds:
    seed_start = time.monotonic()
    gbt, out_of_fold, gbt_s, gbt_bytes = task.train_teacher(tree_fn, "gbt", seed,
                                                            folds=s.folds)
    mlp, _, mlp_s, mlp_bytes = task.train_teacher(mlp_fn, "mlp", seed)
    ensemble = teacher_lib.Ensemble([gbt, mlp])
    cost("gbt_train_seconds", gbt_s)
    cost("mlp_train_seconds", mlp_s)
    cost("mlp_params", mlp.num_params)
    cost("gbt_saved_model_bytes", gbt_bytes)
    cost("mlp_saved_model_bytes", mlp_bytes)
    for method, t in zip(TEACHERS, (gbt, mlp, ensemble)):
      runs[method].append(task.scores(task.eval_logits(t.logits)))
    log(f"{task.name} seed {seed}: teachers trained (gbt{f' + {s.folds} folds' if s.folds else ''} "
        f"{gbt_s:.0f} s, mlp {mlp_s:.0f} s); eval "
        + ", ".join(f"{m} {runs[m][-1][MAIN_METRIC[task.task.value][0]]:.4f}" for m in TEACHERS))
    # The train split's soft labels: out of fold where the teacher has folds
    # (the executor's `_out_of_fold`); the transfer set's as the executor labels it.
    shipped_cache, count, cache_s = task.cache_counted(
        (out_of_fold or gbt).logits, f"gbt_{seed}")
    ensemble_cache, _, ens_cache_s = task.cache_counted(
        teacher_lib.Ensemble([out_of_fold or gbt, mlp]).logits, f"ensemble_{seed}")
    cost("train_examples", count)

    def scored(method, data, alpha, temperature, cache_s_, transfer_s=0.0):
      student, train_s = task.train_student(build_student, data, seed, alpha, temperature)
      result = task.scores(task.eval_logits(student))
      runs[method].append(result)
      timed(method, cache_s_, transfer_s, train_s)
      log(f"  {task.name} seed {seed} {method}: "
          + ", ".join(f"{k} {v:.4f}" for k, v in result.items()) + f" (train {train_s:.0f} s)")
      return student, result

    cached = lambda path: teacher_cache.read(path, s.batch_size, seed=seed)
    student, _ = scored("scratch", cached(shipped_cache), 0.0, s.temperature, cache_s)
    cost("student_params", student.count_params())
    _, shipped = scored(SHIPPED, cached(shipped_cache), s.alpha, s.temperature, cache_s)
    scored("from ensemble", cached(ensemble_cache), s.alpha, s.temperature, ens_cache_s)

    def with_transfer(method, ratio, files):
      path, counts, transfer_s = task.transfer_set(gbt, f"{method}_{seed}", seed,
                                                   ratio=ratio, unlabeled_files=files,
                                                   out_of_fold=out_of_fold)
      transfer_rows.setdefault(method, []).append(sum(counts.values()))
      data = transfer.mix(shipped_cache, path, count, sum(counts.values()),
                          s.batch_size, seed=seed)
      scored(method, data, s.alpha, s.temperature, cache_s, transfer_s)

    for ratio in args.synthetic_ratios:
      with_transfer(f"+ synthetic x{ratio:g}", ratio, None)
    if unlabeled_files:
      with_transfer("+ unlabeled", 0.0, unlabeled_files)
      for ratio in args.synthetic_ratios:
        with_transfer(f"+ unlabeled + synthetic x{ratio:g}", ratio, unlabeled_files)

    for temperature, alpha in grid:
      key = grid_key(temperature, alpha)
      if (temperature, alpha) == (s.temperature, s.alpha):
        grid_runs[key].append(shipped)
        continue
      student, train_s = task.train_student(build_student, cached(shipped_cache), seed,
                                            alpha, temperature)
      grid_runs[key].append(task.scores(task.eval_logits(student)))
      metric = MAIN_METRIC[task.task.value][0]
      log(f"  {task.name} seed {seed} grid {key}: {metric} {grid_runs[key][-1][metric]:.4f}")
    cost("seed_seconds", time.monotonic() - seed_start)
    log(f"{task.name} seed {seed}: {time.monotonic() - seed_start:.0f} s")

  metrics = list(runs["scratch"][0])
  main, _ = MAIN_METRIC[task.task.value]
  shipped_total = seconds[SHIPPED]["total"]
  return {
      "task": task.task.value,
      "seeds": args.seeds,
      "settings": {"temperature": s.temperature, "alpha": s.alpha,
                   "distill_steps": s.distill_steps, "batch_size": s.batch_size,
                   "learning_rate": s.learning_rate, "mlp_train_steps": s.train_steps,
                   "teacher_folds": s.folds, "synthetic_ratios": args.synthetic_ratios},
      "results": {m: {k: _summary([r[k] for r in rs]) for k in metrics}
                  for m, rs in runs.items()},
      "paired_gain_over_scratch": {
          m: _summary([(r[main] - b[main]) * (1 if MAIN_METRIC[task.task.value][1] else -1)
                       for r, b in zip(runs[m], runs["scratch"])])
          for m in methods if m != "scratch"},
      "grid": {k: {main: _summary([r[main] for r in rs])} for k, rs in grid_runs.items()},
      "seconds": {m: {k: _summary(v) for k, v in d.items()} for m, d in seconds.items()},
      "transfer_time_ratio": {
          m: _summary([t / b for t, b in zip(d["total"], shipped_total)])
          for m, d in seconds.items() if m.startswith("+")},
      "transfer_rows": {m: _summary(v) for m, v in transfer_rows.items()},
      "costs": {k: _summary(v) for k, v in costs.items()},
  }


def choose_defaults(results: Dict[str, dict]) -> List[dict]:
  """Grid cells by their worst gap to the task's best cell, in seed spreads.

  For each task, a cell's gap is (best cell's mean - its mean) on the main
  metric (lower-is-better flipped), over the larger of the two cells' seed
  std: how many spreads it trails the best. The default is the cell whose
  worst gap over the tasks is smallest: as good as the best everywhere, as
  far as the seeds can tell, rather than best on one task. Also given: the
  mean rank over the tasks and the mean relative gain over scratch (%).
  """
  cells = None
  ranks: Dict[str, List[float]] = {}
  gains: Dict[str, List[float]] = {}
  gaps: Dict[str, List[float]] = {}
  for r in results.values():
    main, higher = MAIN_METRIC[r["task"]]
    sign = 1 if higher else -1
    means = {k: v[main]["mean"] for k, v in r["grid"].items()}
    stds = {k: v[main]["std"] for k, v in r["grid"].items()}
    cells = cells or list(means)
    order = sorted(means, key=lambda k: -sign * means[k])
    best = order[0]
    scratch = r["results"]["scratch"][main]["mean"]
    for k in means:
      ranks.setdefault(k, []).append(order.index(k) + 1)
      gains.setdefault(k, []).append((means[k] - scratch) / abs(scratch) * 100 * sign)
      gaps.setdefault(k, []).append(
          sign * (means[best] - means[k]) / max(stds[best], stds[k], 1e-9))
  rows = [{"cell": k, "worst_gap": max(gaps[k]), "gaps": gaps[k],
           "mean_rank": statistics.mean(ranks[k]),
           "mean_gain_pct": statistics.mean(gains[k])} for k in cells or []]
  return sorted(rows, key=lambda row: (row["worst_gap"], row["mean_rank"]))


def _cell(summary: Dict[str, float]) -> str:
  return f"{summary['mean']:.4f} ± {summary['std']:.4f}"


def _table(results: Dict[str, dict], args) -> List[str]:
  lines = ["# Does distillation pay off", ""]
  for name, r in results.items():
    methods = list(r["results"])
    lines += [f"## {name} ({r['task']}, seeds {r['seeds']})", "",
              "| metric | " + " | ".join(methods) + " |",
              "|---|" + "---|" * len(methods)]
    for metric in r["results"]["scratch"]:
      lines.append(f"| {metric} | " + " | ".join(_cell(r["results"][m][metric])
                                                for m in methods) + " |")
    main, higher = MAIN_METRIC[r["task"]]
    lines += ["", f"Paired gain over scratch in {main} (same seed; positive = better):",
              "", "| student | gain | transfer rows | seconds (cache + transfer + train) "
              "| time vs shipped |", "|---|---|---|---|---|"]
    for m, g in r["paired_gain_over_scratch"].items():
      rows = r["transfer_rows"].get(m)
      sec = r["seconds"][m]
      ratio = r["transfer_time_ratio"].get(m)
      lines.append(
          f"| {m} | {g['mean']:+.4f} ± {g['std']:.4f} "
          f"| {format(rows['mean'], ',.0f') if rows else '-'} "
          f"| {sec['cache']['mean']:.1f} + {sec['transfer']['mean']:.1f} + "
          f"{sec['train']['mean']:.1f} = {sec['total']['mean']:.1f} "
          f"| {format(ratio['mean'], '.2f') + 'x' if ratio else '-'} |")
    temps = sorted({float(k.split()[0][2:]) for k in r["grid"]})
    alphas = sorted({float(k.split()[1][6:]) for k in r["grid"]})
    lines += ["", f"Grid from the gbt teacher, {main} (scratch "
              f"{_cell(r['results']['scratch'][main])}):", "",
              "| T \\ alpha | " + " | ".join(f"{a:g}" for a in alphas) + " |",
              "|---|" + "---|" * len(alphas)]
    for t in temps:
      lines.append(f"| {t:g} | " + " | ".join(
          _cell(r["grid"][grid_key(t, a)][main]) for a in alphas) + " |")
    c = r["costs"]
    lines += ["", f"Weights: MLP teacher {c['mlp_params']['mean']:,.0f}, student "
              f"{c['student_params']['mean']:,.0f} (MLP / student = "
              f"{c['mlp_params']['mean'] / c['student_params']['mean']:.0f}x); SavedModels: "
              f"MLP {c['mlp_saved_model_bytes']['mean'] / 1e6:.2f} MB, gbt "
              f"{c['gbt_saved_model_bytes']['mean'] / 1e6:.2f} MB. "
              f"Train examples {c['train_examples']['mean']:,.0f}. Teacher training: "
              f"gbt {c['gbt_train_seconds']['mean']:.0f} s, mlp "
              f"{c['mlp_train_seconds']['mean']:.0f} s. One seed: "
              f"{c['seed_seconds']['mean']:.0f} s.", ""]
  choice = choose_defaults(results)
  if choice:
    lines += ["## Defaults across tasks", "",
              "T x alpha cells by their worst gap to the best cell of a task, in "
              "that task's seed spreads (smallest first; per task in the order "
              f"{', '.join(results)}); also their mean rank over the "
              f"{len(results)} tasks on the main metric (1 = best) and mean "
              "relative gain over scratch, % (higher is better).", "",
              "| cell | worst gap (spreads) | gaps per task | mean rank | mean gain % |",
              "|---|---|---|---|---|"]
    lines += [f"| {row['cell']} | {row['worst_gap']:.2f} | "
              + " / ".join(f"{g:.1f}" for g in row["gaps"])
              + f" | {row['mean_rank']:.2f} | {row['mean_gain_pct']:+.3f} |"
              for row in choice]
    lines += ["", f"Best: {choice[0]['cell']}.", ""]
  first = next(iter(results.values()), None)
  if first:
    st = first["settings"]
    lines += ["## Settings", "",
              f"Shipped: T {st['temperature']:g}, alpha {st['alpha']:g}, "
              f"{st['distill_steps']} distill steps of {st['batch_size']} "
              f"(learning rate {st['learning_rate']:g}), MLP teacher "
              f"{st['mlp_train_steps']} steps; teacher folds per task: "
              + ", ".join(f"{n} {r['settings']['teacher_folds']}" for n, r in results.items())
              + f". Grid temperatures {args.temperatures}, alphas {args.alphas}; "
              f"synthetic ratios {args.synthetic_ratios}. Transfer rows take part of "
              "each batch (same steps): time vs shipped = (cache + transfer "
              "labelling + training) / (cache + training) of the shipped student."]
  return lines


def _plot(path: str, results: Dict[str, dict]) -> None:
  plt = _common.pyplot()
  fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5),
                           squeeze=False)
  for axis, (name, r) in zip(axes[0], results.items()):
    metric, _ = MAIN_METRIC[r["task"]]
    methods = list(r["results"])
    means = [r["results"][m][metric]["mean"] for m in methods]
    stds = [r["results"][m][metric]["std"] for m in methods]
    colors = ["#888888"] * len(TEACHERS) + ["#d62728", "#2ca02c", "#1f77b4"] + [
        "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"] * 3
    _common.bar_panel(axis, methods, means, stds, colors,
                      f"{name}: {metric} (eval, mean ± std)", rotation=35)
  _common.save_figure(fig, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  _common.seeded_run_flags(parser, "distill")
  parser.add_argument("--temperatures", type=float, nargs="+", default=[1, 2, 4])
  parser.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.9, 1.0])
  parser.add_argument("--synthetic-ratios", type=float, nargs="+", default=[1])
  parser.add_argument("--distill-steps", type=int, default=None,
                      help="override the shipped student steps (smoke tests)")
  parser.add_argument("--train-steps", type=int, default=None,
                      help="override the shipped MLP teacher steps (smoke tests)")
  parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                      help="write distill.{json,md,png} from the results of "
                      "earlier runs (e.g. two --only runs side by side), then stop")
  args = parser.parse_args(argv)
  if args.combine:
    results = {}
    for path in args.combine:
      with open(path, encoding="utf-8") as f:
        results.update(json.load(f))
    results = {t: results[t] for t in TASKS if t in results}
    _common.save(args.out, "distill", results, _table(results, args))
    _plot(os.path.join(args.out, "distill.png"), results)
    return 0
  unknown = set(args.only or ()) - set(TASKS)
  if unknown:
    parser.error(f"unknown tasks {sorted(unknown)}; known: {list(TASKS)}")
  work = os.path.abspath(args.work)
  shutil.rmtree(work, ignore_errors=True)
  overrides = []
  if args.distill_steps:
    overrides += ["--distill-steps", str(args.distill_steps)]
  if args.train_steps:
    overrides += ["--train-steps", str(args.train_steps)]
  name = "distill" if not args.only else "distill-" + "-".join(args.only)
  results = {}
  for task_name, flags in TASKS.items():
    if args.only and task_name not in args.only:
      continue
    start = time.monotonic()
    unlabeled_csv = None
    if task_name == "synthetic":
      dirs = synthetic_data.write(os.path.join(work, "synthetic_data"), seed=0)
      flags = ["--data-root", dirs["labelled"], "--label", synthetic_data.LABEL,
               "--task", "binary"]
      unlabeled_csv = os.path.join(dirs["unlabeled"], "data.csv")
    log(f"{task_name}: making the Transform outputs")
    task = DistillTask(task_name, [*flags, *overrides], work)
    results[task_name] = run_task(task, args, unlabeled_csv)
    log(f"{task_name}: done in {time.monotonic() - start:.0f} s")
    _common.save(args.out, name, results, _table(results, args))
    _plot(os.path.join(args.out, f"{name}.png"), results)
  return 0


if __name__ == "__main__":
  sys.exit(main())
