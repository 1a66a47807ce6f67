"""The Distiller's second step: where the student's soft labels come from.

Online (the default): the teacher runs on every training batch. Computed
once before training instead when asked (`cache_teacher_outputs`,
`teacher_labelling='beam'`) or needed: out-of-fold models label each train
row with the model not fit on it, and a transfer set (unlabeled rows,
synthetic rows) is labelled before it is mixed into the batches. `plan`
decides, computes what must be computed before training and returns the
train batches; `SoftLabelsOutput` is the Distiller's `soft_labels` output,
where rows labelled on Beam are written (labelling.py).
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from distill_components.distiller import choice
from distill_components.distiller import data
from distill_components.distiller import folds as folds_lib
from distill_components.distiller import labelling
from distill_components.distiller import spec as spec_lib
from distill_components.distiller import teacher as teacher_lib
from distill_components.distiller import teacher_cache
from distill_components.distiller import transfer as transfer_lib

# Examples per teacher call in the passes that label rows before training.
READ_BATCH_SIZE = 1024


@dataclasses.dataclass
class Plan:
  """The train batches and what labelling them before training did."""
  train_data: tf.data.Dataset
  labelled_count: Optional[int] = None  # train rows labelled before training
  transfer_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  scratch_dirs: List[str] = dataclasses.field(default_factory=list)  # removed after training
  labelled_mode: str = labelling.IN_PROCESS  # how, when labelled_count is set

  @property
  def mode(self) -> str:
    """How the train split's teacher outputs were computed (MLMD)."""
    return self.labelled_mode if self.labelled_count is not None else "online"

  def clean_up(self) -> None:
    for directory in self.scratch_dirs:
      fileio.rmtree(directory)


def plan(inputs, soft_labels: "SoftLabelsOutput", tmp_dir: str) -> Plan:
  """The train batches of `inputs` (inputs.Inputs) with whatever the teacher
  must label before training labelled: the train split (cached, out of fold,
  or on Beam) and the transfer set."""
  raw = inputs.raw
  train = lambda size: inputs.outside_cut(  # pylint: disable=g-long-lambda
      inputs.batches(inputs.train_files, size, False))
  result = Plan(choice.rebatch(inputs.outside_cut(
      inputs.batches(inputs.train_files, inputs.batch_size, True)), inputs.batch_size),
                labelled_mode=inputs.labelling_mode)
  beam = inputs.labelling_mode == labelling.BEAM
  unlabeled = inputs.unlabeled
  # Out-of-fold outputs and a transfer set's are computed once, before
  # training, as a cache is: every fold model runs on its own rows only.
  # Asking for Beam labelling asks for that pass too.
  if (inputs.cache_teacher_outputs or inputs.out_of_fold or unlabeled
      or inputs.synthetic_ratio or beam):
    if beam:
      handler = soft_labels.handler(
          [None if raw is not None or not f else a.uri
           for a, f in zip(inputs.teacher_artifacts, inputs.folded)],
          (inputs.tf_transform_output.raw_feature_spec() if raw is not None
           else inputs.tf_transform_output.transformed_feature_spec()),
          labelling.RAW if raw is not None else labelling.TRANSFORMED)
      result.labelled_count, soft_dir = soft_labels.label(
          inputs.train_split, inputs.train_files, handler)
      labelled_rows = lambda size: choice.rebatch(inputs.outside_cut(_soft_label_rows(  # pylint: disable=g-long-lambda
          soft_dir, inputs.tf_transform_output, inputs.label_key, inputs.feature_spec,
          raw is not None, inputs.teacher.width, size)), size)
    else:
      cache_dir = os.path.join(tmp_dir, "teacher_outputs")
      result.scratch_dirs.append(cache_dir)
      result.labelled_count = teacher_cache.write(
          None if raw is not None else (inputs.out_of_fold or inputs.teacher).logits,
          train(READ_BATCH_SIZE), cache_dir)
      logging.info("Teacher outputs for %d train examples cached in %s.",
                   result.labelled_count, cache_dir)
      labelled_rows = lambda size: teacher_cache.read(cache_dir, size)
    result.train_data = labelled_rows(inputs.batch_size)
  transfer = []
  if unlabeled and beam:
    count, rows_of = _label_unlabeled_on_beam(
        soft_labels, unlabeled, raw, inputs.fn_args.transform_output,
        inputs.tf_transform_output, inputs.raw_label_keys, inputs.feature_spec,
        inputs.teacher.width)
    _check_unlabeled(count)
    result.transfer_counts[transfer_lib.UNLABELED] = count
    transfer.append((rows_of, count))
    unlabeled = None  # labelled
  if unlabeled or inputs.synthetic_ratio:
    transfer_dir = os.path.join(tmp_dir, "transfer_set")
    result.scratch_dirs.append(transfer_dir)
    counts = _write_transfer_set(
        transfer_dir, unlabeled, inputs.synthetic_ratio, inputs.teacher, raw,
        inputs.feature_spec, inputs.tf_transform_output, inputs.raw_label_keys,
        lambda: train(READ_BATCH_SIZE), inputs.out_of_fold)
    if unlabeled:
      _check_unlabeled(counts.get(transfer_lib.UNLABELED, 0))
    result.transfer_counts.update(counts)
    transfer.append((lambda size: teacher_cache.read(transfer_dir, size),
                     sum(counts.values())))
  if transfer:
    logging.info("Transfer set labelled by the teacher: %s.", result.transfer_counts)
    result.train_data = transfer_lib.mix(labelled_rows, result.labelled_count,
                                         transfer, inputs.batch_size)
  return result


def _check_unlabeled(count: int) -> None:
  if not count:
    raise transfer_lib.TransferSetError(
        "unlabeled_examples hold no rows: the transfer set would add nothing. "
        "Point it at examples, or leave it unset.")


class SoftLabelsOutput:
  """The soft_labels output: each source the teacher labelled on Beam, as a
  split of it (on a worker that is not the chief, in its scratch)."""

  def __init__(self, artifact, chief: bool, scratch: str, make_pipeline,
               teacher_dirs, feature_spec, reading):
    self._artifact, self._chief, self._scratch = artifact, chief, scratch
    self._make_pipeline = make_pipeline
    self._teacher = (teacher_dirs, feature_spec, reading)
    self._splits = []

  def handler(self, fold_uris, parse_spec, records, **kwargs
              ) -> labelling.TeacherHandler:
    """A RunInference handler for this run's teachers; `fold_uris`: per
    teacher, the artifact whose out-of-fold models label, or None (all: the
    teachers themselves)."""
    teacher_dirs, feature_spec, reading = self._teacher
    fold_uris = fold_uris or [None] * len(teacher_dirs)
    return labelling.TeacherHandler(teacher_dirs, fold_uris, parse_spec,
                                    feature_spec, reading, records, **kwargs)

  def label(self, split: str, files, handler) -> Tuple[int, str]:
    """Labels `files` on Beam into split `split`; the rows written, and where."""
    if self._artifact is None:
      raise labelling.LabellingError(
          f"teacher_labelling={labelling.BEAM!r} writes to the Distiller's "
          f"{spec_lib.SOFT_LABELS_KEY!r} output, which this execution lacks.")
    if self._chief:
      self._splits.append(split)
      self._artifact.split_names = artifact_utils.encode_split_names(self._splits)
      directory = artifact_utils.get_split_uri([self._artifact], split)
    else:
      directory = os.path.join(self._scratch, spec_lib.SOFT_LABELS_KEY, split)
    count = labelling.run(self._make_pipeline(), files, handler, directory)
    logging.info("The teacher labelled %d %s examples on Beam: %s.", count, split,
                 directory)
    return count, directory


def _all_splits(examples) -> List[str]:
  """File patterns of every split of an Examples channel's one artifact."""
  artifact = artifact_utils.get_single_instance(examples)
  return [io_utils.all_files_pattern(artifact_utils.get_split_uri([artifact], split))
          for split in artifact_utils.decode_split_names(artifact.split_names)]


def _unlabeled_dataset(files, tf_transform_output, raw_label_keys, feature_spec):
  try:
    return data.unlabeled_dataset(files, tf_transform_output, raw_label_keys,
                                  feature_spec, READ_BATCH_SIZE)
  except ValueError as e:
    raise transfer_lib.TransferSetError(f"unlabeled_examples: {e}") from e


def _label_unlabeled_on_beam(soft_labels: "SoftLabelsOutput", unlabeled, raw,
                             transform_dir: str, tf_transform_output, raw_label_keys,
                             feature_spec, width: int):
  """The transfer set's unlabeled rows, labelled on Beam (split 'unlabeled'):
  their count, and their (features, teacher logits) batches."""
  files = _all_splits(unlabeled)
  # Fails here, naming the problem, on rows this Transform cannot read.
  _unlabeled_dataset(files, tf_transform_output, raw_label_keys, feature_spec)
  record_spec = {name: spec for name, spec in tf_transform_output.raw_feature_spec().items()
                 if name not in set(raw_label_keys)}
  if raw is not None:
    handler = soft_labels.handler(None, record_spec, labelling.RAW)
  else:
    handler = soft_labels.handler(None, record_spec, labelling.UNTRANSFORMED,
                                  transform_dir=transform_dir)
  try:
    count, directory = soft_labels.label(transfer_lib.UNLABELED, files, handler)
  except Exception as e:  # pylint: disable=broad-except
    # A row that does not parse fails in a Beam worker, as whatever the runner
    # wraps TensorFlow's error in.
    raise transfer_lib.TransferSetError(
        "The teacher could not label the unlabeled examples on Beam (each needs "
        "every column the raw schema requires, but the label's): "
        f"{str(e).splitlines()[-1] if str(e) else type(e).__name__}") from e
  layer = tf_transform_output.transform_features_layer()

  def prepare(parsed, logits):
    transformed = layer(parsed)
    return {name: transformed[name] for name in feature_spec}, logits

  return count, lambda size: labelling.rows(  # pylint: disable=g-long-lambda
      directory, record_spec, width, prepare, size, teacher_cache.SHUFFLE_BUFFER)


def _soft_label_rows(soft_dir: str, tf_transform_output, label_key: str,
                     feature_spec, raw: bool, width: int, batch_size: int
                     ) -> tf.data.Dataset:
  """(features, label, teacher logits) batches of the rows labelled on Beam:
  transformed examples as TFXIO reads them, or raw ones transformed here by
  this run's transform graph (a teacher of another Transform), as
  `data.raw_dataset` does."""
  if raw:
    layer = tf_transform_output.transform_features_layer()

    def prepare(parsed, logits):
      transformed = layer(parsed)
      return ({name: transformed[name] for name in feature_spec},
              transformed[label_key], logits)
    record_spec = tf_transform_output.raw_feature_spec()
  else:
    def prepare(parsed, logits):
      label = parsed.pop(label_key)
      return parsed, label, logits
    record_spec = tf_transform_output.transformed_feature_spec()
  return labelling.rows(soft_dir, record_spec, width, prepare, batch_size,
                        teacher_cache.SHUFFLE_BUFFER)


def _write_transfer_set(path, unlabeled, ratio, teacher, raw, feature_spec,
                        tf_transform_output, raw_label_keys, train_batches,
                        out_of_fold) -> Dict[str, int]:
  """Labels the transfer set with the teacher, once; its rows by source.

  Unlabeled rows are no train rows: the teacher fit on every row labels
  them. A synthetic row is mostly its base train row: out-of-fold models,
  where there are, label it by that row's fold.
  """
  sources = {}
  if unlabeled:
    files = _all_splits(unlabeled)
    dataset = _unlabeled_dataset(files, tf_transform_output, raw_label_keys,
                                 feature_spec)
    sources[transfer_lib.UNLABELED] = lambda: transfer_lib.unlabeled_rows(
        dataset, teacher.logits, raw)
  if ratio:
    labeller = out_of_fold or teacher
    sources[transfer_lib.SYNTHETIC] = lambda: transfer_lib.synthetic_rows(
        train_batches(), labeller.logits, ratio)
  return transfer_lib.write(sources, feature_spec, teacher.width, path)


def out_of_fold(teacher_uri: str, raw: bool, feature_spec, width: int,
                 reading: Dict[str, Any], exec_properties
                 ) -> Optional[teacher_lib.OutOfFold]:
  """The teacher's out-of-fold models for the train split, or None.

  Used when the teacher's artifact has them (folds.py) and the teacher reads
  this run's transformed examples: a teacher read through raw examples was
  fit on another run's rows, which its folds are about.
  """
  wanted = int(exec_properties.get(spec_lib.TEACHER_FOLDS_KEY) or 0)
  manifest = folds_lib.read_manifest(teacher_uri)
  if manifest and raw:
    logging.warning("The teacher's out-of-fold models are not used: it reads raw "
                    "examples, so it was fit on another run's rows.")
    manifest = None
  found = int(manifest["folds"]) if manifest else 0
  if wanted and wanted != found:
    raise teacher_lib.TeacherContractError(
        f"teacher_folds={wanted}, but the teacher at {teacher_uri} has "
        + (f"{found} out-of-fold models" if found else
           f"no out-of-fold models ({folds_lib.DIR}/{folds_lib.MANIFEST})"
           + (" that this run may use: it reads raw examples" if raw else ""))
        + ". Its Trainer module writes them (distill_components.distiller.folds; "
        "the zero-code tree teacher does with teacher_folds in its custom_config), "
        "or unset teacher_folds.")
  if not manifest:
    return None
  out_of_fold = teacher_lib.OutOfFold(teacher_uri, manifest, feature_spec, **reading)
  if out_of_fold.width != width:
    raise teacher_lib.TeacherContractError(
        f"The teacher's out-of-fold models emit {out_of_fold.width} outputs; the "
        f"teacher emits {width}.")
  logging.info("Train outputs of the teacher out of fold: %d models.", out_of_fold.folds)
  return out_of_fold


