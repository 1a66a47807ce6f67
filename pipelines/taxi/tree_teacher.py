"""Trainer module file: the taxi demo's tree teacher, gradient-boosted trees (TF-DF).

The taxi data is a table, and on tables a tree ensemble generalises better
than one wide network trained on 10k rows: that is what makes a teacher worth
distilling (bench/teachers.py measures both). The trees read the taxi
Transform's features: the floats and the ordered ids (hour, day, month, the
location buckets) as numbers, the vocabularies (payment type, company) as
categories. They emit the log-odds of a big tip and are saved with the
Distiller's serving contract (`export.save_model`); loading them needs
`tensorflow_decision_forests` imported (the demo's `teacher_imports`), the
distilled student does not.
"""
import functools

import tensorflow_decision_forests as tfdf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from distill_components.distiller import export
from distill_components.distiller import tasks
from distill_pipelines.generic import tree_teacher
from distill_pipelines.taxi import features as f


def feature_usages():
  """Vocabularies as categories; every other taxi feature as a number."""
  numerical, categorical = (tfdf.keras.FeatureSemantic.NUMERICAL,
                            tfdf.keras.FeatureSemantic.CATEGORICAL)
  ordered = (*f.DENSE_FLOAT_KEYS, *f.CATEGORICAL_MAX_VALUES, *f.BUCKET_KEYS)
  return ([tfdf.keras.FeatureUsage(f.transformed_name(k), semantic=numerical)
           for k in ordered]
          + [tfdf.keras.FeatureUsage(f.transformed_name(k), semantic=categorical)
             for k in f.VOCAB_KEYS])


def run_fn(fn_args: FnArgs):
  """Trains the trees and saves them to fn_args.serving_model_dir; with
  `teacher_folds` in the custom_config, the out-of-fold models beside them."""
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  train = functools.partial(
      tree_teacher.fit, fn_args, tf_transform_output, task=tasks.Task.BINARY,
      usages=feature_usages(), label_key=f.LABEL_KEY, width=1,
      seed=int((fn_args.custom_config or {}).get("seed", tree_teacher.DEFAULT_SEED)))
  save = functools.partial(export.save_model, tf_transform_output=tf_transform_output,
                           label_key=f.LABEL_KEY, raw_label_keys=f.RAW_LABEL_KEYS)
  save(train(), fn_args.serving_model_dir)
  folds = tree_teacher.teacher_folds(fn_args)
  if folds:
    tree_teacher.save_out_of_fold(fn_args, tf_transform_output, folds,
                                  lambda without: train(without_fold=without), save,
                                  f.LABEL_KEY)
