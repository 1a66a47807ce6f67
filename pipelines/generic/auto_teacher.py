"""Trainer module: the zero-code teacher, chosen on the validation cut.

`teacher_type: auto` (the default; `--teacher-type auto`). No one kind of
teacher wins on every table: gradient-boosted trees lead on most tabular
data, a network on pixel-like features, their mean on some regressions
(bench/teachers.md, bench/distill.md). So this module fits the three
candidates the other zero-code modules fit, on the train rows outside the
validation cut (distill_components.distiller.choice: the rows the
Distiller's two students are compared on, so neither the kept teacher nor a
student has seen them):

- `gbt`: the trees (tree_teacher.py),
- `mlp`: the wide network (teacher.py),
- `ensemble`: their mean (ensemble_teacher.py),

scores each on the cut by TFMA (the choice metric: the gate's, in
custom_config CHOICE_METRIC), and saves the best with the Distiller's
serving contract. Every candidate's figures go to
`choice.CANDIDATES_FILE` beside the serving model; the Distiller records
them on the student's Model in MLMD, and the summary and the report show
them.

Out of fold (`teacher_folds` k): the kept candidate's fold models, as its own
module writes them (the network, fit on every row, is its own fold model).

Loading the saved teacher needs `import tensorflow_decision_forests` when
the trees are in it; the pipeline names it in teacher_imports either way.
"""

import os

import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from distill_components.distiller import choice
from distill_pipelines.generic import config
from distill_pipelines.generic import ensemble_teacher
from distill_pipelines.generic import teacher as mlp_teacher
from distill_pipelines.generic import tree_teacher
from tfx_bsl.tfxio import dataset_options

IMPORTS = tree_teacher.IMPORTS
GBT, MLP, ENSEMBLE = "gbt", "mlp", "ensemble"


def _validation_rows(fn_args: FnArgs, s: tree_teacher.Setup, fraction: float):
  """(features, label) batches of the train split's validation cut, one pass."""
  rows = fn_args.data_accessor.tf_dataset_factory(
      fn_args.train_files,
      dataset_options.TensorFlowDatasetOptions(
          batch_size=tree_teacher.READ_BATCH_SIZE, label_key=s.cfg.label_key,
          num_epochs=1, shuffle=False),
      s.tf_transform_output.transformed_metadata.schema)
  return choice.cut(rows, tree_teacher.fold_features(s.tf_transform_output,
                                                     s.cfg.label_key),
                    fraction, validation=True)


def run_fn(fn_args: FnArgs) -> None:
  """Fits the candidates, keeps the best on the validation cut, saves it."""
  custom = fn_args.custom_config or {}
  fraction = choice.check_fraction(
      custom.get(config.VALIDATION_FRACTION) or choice.DEFAULT_VALIDATION_FRACTION)
  s = tree_teacher.setup(fn_args)
  metric = choice.metric_named(
      s.cfg.task, custom.get(config.CHOICE_METRIC)
      or s.cfg.task.metrics[0].name)
  network = mlp_teacher.train(fn_args, s.tf_transform_output, s.cfg,
                              outside_cut=fraction)  # checks the labels
  trees = s.fit(outside_cut=fraction)
  candidates = {GBT: trees, MLP: network,
                ENSEMBLE: ensemble_teacher.average([trees, network], s.feats)}
  labels, logits = choice.collect(_validation_rows(fn_args, s, fraction), candidates,
                                  choice.SCORED_ROWS)
  if not len(labels):
    raise choice.ChoiceError(
        f"The validation cut ({fraction:.0%} of the train split) holds no rows "
        "to choose the teacher on: add train rows or raise validation_fraction.")
  figures = choice.score(
      s.cfg.task, {choice.VALIDATION: labels},
      {choice.VALIDATION: {name: choice.outputs(s.cfg.task, values)
                           for name, values in logits.items()}})[choice.VALIDATION]
  # Ties go to the simpler model: trees, then the network, then their mean.
  chosen = GBT
  for name in (MLP, ENSEMBLE):
    chosen = choice.better(figures, metric, chosen, name)
  tf.get_logger().info("Teacher candidates on %d validation rows (%s): %s; kept %s.",
                       len(labels), metric.name,
                       {k: round(v[metric.name], 4) for k, v in figures.items()},
                       chosen)
  s.save(candidates[chosen], fn_args.serving_model_dir)
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  choice.write_candidates(model_uri, figures, chosen, metric.name)
  folds = tree_teacher.teacher_folds(fn_args)
  if folds:
    fit_without = {
        GBT: lambda without: s.fit(without_fold=without, outside_cut=fraction),
        MLP: lambda without: network,
        ENSEMBLE: lambda without: ensemble_teacher.average(
            [s.fit(without_fold=without, outside_cut=fraction), network], s.feats),
    }[chosen]
    tree_teacher.save_out_of_fold(fn_args, s.tf_transform_output, folds,
                                  fit_without, s.save, s.cfg.label_key)
