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

import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

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
  s = tree_teacher.setup(fn_args)
  network = mlp_teacher.train(fn_args, s.tf_transform_output, s.cfg)  # checks the labels
  s.save(average([s.fit(), network], s.feats), fn_args.serving_model_dir)
  folds = tree_teacher.teacher_folds(fn_args)
  if folds:
    tree_teacher.save_out_of_fold(
        fn_args, s.tf_transform_output, folds,
        lambda without: average([s.fit(without_fold=without), network], s.feats),
        s.save, s.cfg.label_key)
