"""Trainer module: a gradient-boosted-trees teacher (TF-DF) on any transformed CSV.

The zero-code alternative to the MLP teacher (`teacher.py`), chosen with the
`teacher_type: gbt` setting (`--teacher-type gbt`). Same contract: reads the
label, task and classes from `fn_args.custom_config`, checks the train
labels before training, and saves the model with the Distiller's serving
contract (`export.save_model`: raw tf.Examples in, probabilities or
predictions out; `transformed_logits` for the Distiller).

The trees read every transformed feature: a vocabulary's ids (an int64
feature with a known number of buckets) as a categorical feature, everything
else as a numerical one. They emit logits, not probabilities
(`apply_link_function=False`: the log-odds of binary classification, the K
pre-softmax scores of multi-class, the prediction of regression), so the
Distiller reads them as a network's logits and serving applies the sigmoid or
softmax once.

Sizing: a tree model reads the whole train split once (TFX's own TF-DF
example does too; `train_steps` does not apply) and holds what it trains on
in memory, about 4 bytes per feature and row (1.5M rows of 20 features:
~120 MB). Up to NUM_TREES trees of depth MAX_DEPTH are grown, and early
stopping on VALIDATION_RATIO of the train rows keeps only as many as help, so
small tables get small models and large tables larger ones. Above
MAX_TRAIN_ROWS train rows, the trees fit on a uniform random sample of about
that many (`sample`, seeded; early stopping's cut comes from it): more rows
add little but time. Above DISCRETIZE_ABOVE_ROWS rows (after the sample),
numerical features are binned into 255 buckets (YDF's histogram splits).
bench/tree_scale.py measured both on 667k taxi train rows (3 seeds, eval
AUC on 333k rows): binning took the fit from 130 s to 29 s at no AUC cost
(+0.0001); the 250k sample to 19-20 s at 0.0007 AUC (400k: 0.0004 AUC,
21-24 s; 100k: 0.0015). Reading the split, whole whatever the sample, is
12 s of it.

Out of fold: with `teacher_folds` k in the custom_config, k more models are
fit, each on the train rows of every fold but one, and saved beside the
serving model (distill_components.distiller.folds); the Distiller takes each
train row's soft label from the model that did not see it. It costs k more
fits (on (k-1)/k of the rows each, or a sample of MAX_TRAIN_ROWS of them).

Loading the saved model needs `import tensorflow_decision_forests` (its
custom ops): the pipeline names it in `teacher_imports` for the components
that load the teacher (Distiller, Scorer, LiteRTExport). The distilled student does not need it.
"""
import functools
import os
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

import tensorflow as tf
import tensorflow_decision_forests as tfdf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.tfxio import dataset_options

from distill_components.distiller import choice
from distill_components.distiller import export
from distill_components.distiller import folds as folds_lib
from distill_components.distiller import tasks
from distill_pipelines.generic import config
from distill_pipelines.generic import models
from distill_pipelines.generic import teacher as mlp_teacher

# The module to import before such a teacher loads (its custom ops).
IMPORTS = ("tensorflow_decision_forests",)
NUM_TREES = 300
MAX_DEPTH = 6
SHRINKAGE = 0.1
VALIDATION_RATIO = 0.1
DISCRETIZE_ABOVE_ROWS = 200_000
# More train rows than this: the trees fit on a sample of this many, the
# smallest within 0.001 eval AUC of all 667k taxi rows (bench/tree_scale.py).
MAX_TRAIN_ROWS = 250_000
NUM_THREADS = os.cpu_count() or 1
# Rows per batch read into TF-DF (quality does not depend on it).
READ_BATCH_SIZE = 4096
DEFAULT_SEED = 123456  # YDF's own default


def feature_usages(feats):
  """TF-DF's view of each transformed feature: vocabulary ids are categories."""
  return [tfdf.keras.FeatureUsage(f.name, semantic=(
      tfdf.keras.FeatureSemantic.CATEGORICAL if f.num_buckets
      else tfdf.keras.FeatureSemantic.NUMERICAL)) for f in feats]


def build(task: tasks.Task, usages, *, large: bool = False,
          seed: int = DEFAULT_SEED) -> tfdf.keras.GradientBoostedTreesModel:
  """The untrained model; `large`: more than DISCRETIZE_ABOVE_ROWS rows."""
  if large:  # binned: TF-DF's discretize flag skips features given as NUMERICAL
    binned = tfdf.keras.FeatureSemantic.DISCRETIZED_NUMERICAL
    usages = [tfdf.keras.FeatureUsage(u.name, semantic=binned)
              if u.semantic == tfdf.keras.FeatureSemantic.NUMERICAL else u for u in usages]
  return tfdf.keras.GradientBoostedTreesModel(
      task=(tfdf.keras.Task.CLASSIFICATION if task.is_classification
            else tfdf.keras.Task.REGRESSION),
      features=list(usages), exclude_non_specified_features=True,
      apply_link_function=False, num_trees=NUM_TREES, max_depth=MAX_DEPTH,
      shrinkage=SHRINKAGE, validation_ratio=VALIDATION_RATIO,
      discretize_numerical_features=large, random_seed=seed,
      num_threads=NUM_THREADS, verbose=0)


@functools.lru_cache(maxsize=4)
def _count_rows(files: Tuple[str, ...]) -> int:
  """The records in the (gzipped TFRecord) files: ~2 s a million."""
  records = tf.data.TFRecordDataset(
      tf.data.Dataset.list_files(list(files), shuffle=False), compression_type="GZIP")
  return int(records.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def sample(dataset: tf.data.Dataset, fraction: float, seed: int) -> tf.data.Dataset:
  """A uniform random `fraction` of the rows of (features, label) batches:
  each row kept with that probability, the same rows for the same seed and
  batches (not the first rows: a table sorted by date would bias those)."""
  def keep(index, batch):  # scan, not enumerate: TF-DF looks for the batch through it
    draws = tf.random.stateless_uniform(
        tf.shape(batch[1])[:1], seed=tf.stack([tf.constant(seed, tf.int64), index]))
    return index + 1, tf.nest.map_structure(
        lambda t: tf.boolean_mask(t, draws < fraction), batch)
  return dataset.scan(tf.constant(0, tf.int64), keep)


def fit(fn_args: FnArgs, tf_transform_output: tft.TFTransformOutput, *,
        task: tasks.Task, usages, label_key: str, width: int,
        seed: int = DEFAULT_SEED,
        without_fold: Optional[Tuple[int, int]] = None,
        outside_cut: Optional[float] = None
        ) -> tfdf.keras.GradientBoostedTreesModel:
  """Trees trained on the train split once (a sample of MAX_TRAIN_ROWS of
  it when it holds more); they emit `width` logits.

  `without_fold` (i, k): on the train rows not in fold i of k only;
  `outside_cut` (a fraction): not on the rows of that validation cut
  (distill_components.distiller.choice). Either way, the sample is of the
  rows left, about MAX_TRAIN_ROWS too.
  """
  train = fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=READ_BATCH_SIZE, label_key=label_key, num_epochs=1,
          shuffle=False),
      tf_transform_output.transformed_metadata.schema)
  if without_fold:
    train = folds_lib.without_fold(train, *without_fold,
                                   fold_features(tf_transform_output, label_key))
  if outside_cut:
    train = choice.cut(train, fold_features(tf_transform_output, label_key),
                       outside_cut, validation=False)
  rows = (_count_rows(tuple(fn_args.train_files))
          * (1 - 1 / without_fold[1] if without_fold else 1) * (1 - (outside_cut or 0)))
  if rows > MAX_TRAIN_ROWS:
    train, rows = sample(train, MAX_TRAIN_ROWS / rows, seed), MAX_TRAIN_ROWS
  model = build(task, usages, seed=seed, large=rows > DISCRETIZE_ABOVE_ROWS)
  model.fit(train, verbose=0)
  emitted = model.predict(train.take(1), verbose=0).shape[-1]
  if emitted != width:
    raise ValueError(
        f"The tree teacher emits {emitted} outputs, but the {task.value} task "
        f"needs {width}: the train split lacks the highest class ids (TF-DF "
        "counts the classes up to the largest it sees). Use the MLP teacher "
        "(--teacher-type mlp), or leave the unseen classes out of label_values.")
  if fn_args.model_run_dir and not without_fold:
    model.make_inspector().export_to_tensorboard(fn_args.model_run_dir)
  return model


def fold_features(tf_transform_output: tft.TFTransformOutput,
                  label_key: str) -> List[str]:
  """The features a row's fold is hashed from: every transformed one but the label."""
  return sorted(set(tf_transform_output.transformed_feature_spec()) - {label_key})


def teacher_folds(fn_args: FnArgs) -> int:
  """custom_config's teacher_folds: 0 (none) or k >= 2."""
  return folds_lib.check_folds(
      int((fn_args.custom_config or {}).get(config.TEACHER_FOLDS) or 0))


def save_out_of_fold(fn_args: FnArgs, tf_transform_output: tft.TFTransformOutput,
                     folds: int, fit_without: Callable[[Tuple[int, int]], Any],
                     save: Callable[[Any, str], None], label_key: str) -> None:
  """Fits and saves `folds` out-of-fold models beside the serving model.

  `fit_without((i, k))` returns a model fit without fold i; `save(model,
  dir)` saves it as the serving model is saved. folds.json is written last,
  so a teacher whose Trainer died half-way has no folds, not some.
  """
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  for fold in range(folds):
    save(fit_without((fold, folds)), folds_lib.model_dir(model_uri, fold))
  folds_lib.write_manifest(model_uri, folds, fold_features(tf_transform_output, label_key))


class Setup(NamedTuple):
  """What a run_fn that fits trees needs, read from fn_args once."""
  cfg: config.Config
  tf_transform_output: tft.TFTransformOutput
  feats: List[models.Feature]
  width: int  # the outputs the task needs
  fit: Callable[..., Any]   # fit(without_fold=None) -> the trees
  save: Callable[[Any, str], None]  # save(model, dir), the serving contract


def setup(fn_args: FnArgs) -> Setup:
  """The config, the Transform output and the trees' fit and save for fn_args."""
  cfg = config.parse(fn_args.custom_config)
  tf_transform_output = tft.TFTransformOutput(
      getattr(fn_args, "transform_output", None) or fn_args.transform_graph_path)
  feats = models.features(tf_transform_output, cfg.label_key)
  width = cfg.task.output_width(models.num_classes(cfg, tf_transform_output))
  trees = functools.partial(
      fit, fn_args, tf_transform_output, task=cfg.task, usages=feature_usages(feats),
      label_key=cfg.label_key, width=width,
      seed=int((fn_args.custom_config or {}).get(config.SEED, DEFAULT_SEED)))
  save = functools.partial(export.save_model, tf_transform_output=tf_transform_output,
                           label_key=cfg.label_key, raw_label_keys=cfg.raw_label_keys,
                           task=cfg.task)
  return Setup(cfg, tf_transform_output, feats, width, trees, save)


def run_fn(fn_args: FnArgs) -> None:
  """Trains the trees and saves them to fn_args.serving_model_dir."""
  s = setup(fn_args)
  mlp_teacher.check_labels(
      models.label_sample(fn_args, s.tf_transform_output, s.cfg.label_key), s.cfg, s.width)
  s.save(s.fit(), fn_args.serving_model_dir)
  folds = teacher_folds(fn_args)
  if folds:
    save_out_of_fold(fn_args, s.tf_transform_output, folds,
                     lambda without: s.fit(without_fold=without), s.save, s.cfg.label_key)
