"""Trainer module: the trees and the network, averaged, as one teacher.

`teacher_type: ensemble` (`--teacher-type ensemble`). Trains the tree teacher
(`tree_teacher.py`: gradient-boosted trees, TF-DF) and the MLP teacher
(`teacher.py`) on the same transformed examples and saves one Keras model
whose output is the mean of theirs (logits; regression: predictions), with
the Distiller's serving contract (`export.save_model`). Two different kinds
of model err differently, so their mean generalises better than either
(Hinton et al. 2015 distil an ensemble; bench/distill.py measures it per
task). One model, one Trainer: it runs wherever a Trainer runs (a list of
teachers needs a union channel, which Kubeflow V2 does not compile).

Out of fold (`teacher_folds` k): k more ensembles, each of the trees fit
without one fold and the network fit on every row (a network's outputs on
its own training rows are not over-fit the way boosted trees' are; refitting
it k times would cost k times its training).

Loading the saved model needs `import tensorflow_decision_forests`, like the
trees alone; the distilled student does not.
"""
import functools

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from distill_components.distiller import export
from distill_pipelines.generic import config
from distill_pipelines.generic import models
from distill_pipelines.generic import teacher as mlp_teacher
from distill_pipelines.generic import tree_teacher

IMPORTS = tree_teacher.IMPORTS


def average(members, feats) -> tf.keras.Model:
  """One Keras model over the transformed features: the mean of `members`."""
  inputs = models.keras_inputs(feats)
  outputs = [member({name: inputs[name] for name in inputs}) for member in members]
  return tf.keras.Model(inputs, tf.keras.layers.Average()(outputs))


def run_fn(fn_args: FnArgs) -> None:
  """Trains the trees and the network; saves their mean to fn_args.serving_model_dir."""
  cfg = config.parse(fn_args.custom_config)
  tf_transform_output = tft.TFTransformOutput(
      getattr(fn_args, "transform_output", None) or fn_args.transform_graph_path)
  feats = models.features(tf_transform_output, cfg.label_key)
  width = cfg.task.output_width(models.num_classes(cfg, tf_transform_output))
  network = mlp_teacher.train(fn_args, tf_transform_output, cfg)  # checks the labels
  trees = functools.partial(
      tree_teacher.fit, fn_args, tf_transform_output, task=cfg.task,
      usages=tree_teacher.feature_usages(feats), label_key=cfg.label_key, width=width,
      seed=int((fn_args.custom_config or {}).get(config.SEED, tree_teacher.DEFAULT_SEED)))
  save = functools.partial(export.save_model, tf_transform_output=tf_transform_output,
                           label_key=cfg.label_key, raw_label_keys=cfg.raw_label_keys,
                           task=cfg.task)
  save(average([trees(), network], feats), fn_args.serving_model_dir)
  folds = tree_teacher.teacher_folds(fn_args)
  if folds:
    tree_teacher.save_out_of_fold(
        fn_args, tf_transform_output, folds,
        lambda without: average([trees(without_fold=without), network], feats),
        save, cfg.label_key)
