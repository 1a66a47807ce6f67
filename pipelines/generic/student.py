"""Distiller module: the generic student, at least 10x smaller than the teacher.

`build_student(fn_args)` returns an uncompiled Keras model from the
transformed features to logits (regression: predictions in the label's
units), sized from the Transform's output and `fn_args.custom_config`
(keys in `config`). The Distiller trains and exports it.
"""
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import FnArgs

from distill_pipelines.generic import config
from distill_pipelines.generic import models


def build_student(fn_args: FnArgs) -> tf.keras.Model:
  """The small MLP student for fn_args' transformed features (uncompiled)."""
  cfg = config.parse(fn_args.custom_config)
  tf_transform_output = tft.TFTransformOutput(
      getattr(fn_args, "transform_output", None) or fn_args.transform_graph_path)
  feats, scales = models.fit_to_train_sample(
      fn_args, tf_transform_output, models.features(tf_transform_output, cfg.label_key))
  return models.build_student(
      feats, cfg.task, models.num_classes(cfg, tf_transform_output),
      label_scale=models.regression_scale(fn_args, tf_transform_output, cfg),
      hidden_units=cfg.student_hidden_units, scales=scales)
