"""How the Distiller reads a teacher, and the checks that it can.

The teacher is the serving SavedModel a Trainer wrote (the `Format-Serving`
directory of its Model artifact). The Distiller calls it on transformed
features (name -> dense [batch, ...] tensor, as TFX's DataAccessor yields
them) and needs [batch, K] logits. It reads the teacher the first way that
fits, in this order:

1. A signature that takes transformed features, one keyword argument each, and
   returns one [batch, K] tensor named `logits` or `probabilities`: the one
   named by `teacher_signature`, else `transformed_logits`, which
   `export.save_model` writes. A signature named explicitly must exist.
2. The Keras model itself, unchanged: saved with `model.save(dir)`, or with
   `tf.saved_model.save(model, dir, signatures=...)` as TFX's examples save it
   (penguin's `run_fn`). `tf.keras.models.load_model` refuses the latter (it
   lacks the Keras metadata; TFMA then treats it as a generic SavedModel), so
   both are read with `tf.saved_model.load`, whose restored object keeps the
   model's traced call. It is called in inference mode on the inputs it
   declares, taken by name from the transformed features and cast to its
   dtypes. Whether it emits logits or probabilities is read from the op that
   computes its output (`outputs.head`): Sigmoid / Softmax -> probabilities,
   the BiasAdd of a linear layer -> logits. Where that cannot be seen (a
   clipped sigmoid, a hand-made softmax) `teacher_outputs` ("logits" or
   "probabilities") says it, and where it can be seen it must agree.

Probabilities become logits through `losses.logits_from_probabilities` (prefer
logits: they lose nothing at high confidence). A regression teacher's outputs
are predictions, used as they are whatever its final activation.

A teacher whose SavedModel calls ops stock TensorFlow does not register (a
TF-DF tree ensemble) loads once the modules in `imports` (the Distiller's
`teacher_imports`) are imported; without them the error names the op and the
setting (`custom_ops`).

Several teachers are read one by one and averaged (`Ensemble`: the mean of
their logits, or of their predictions for regression).

A teacher that fits neither way fails here, before training, with a
TeacherContractError naming what the SavedModel has and how to fix it.
"""

from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence

import tensorflow as tf

from distill_components.distiller import custom_ops
from distill_components.distiller import export
from distill_components.distiller import folds as folds_lib
from distill_components.distiller import losses
from distill_components.distiller import outputs as outputs_lib
from distill_components.distiller import tasks

_KINDS = (outputs_lib.LOGITS, outputs_lib.PROBABILITIES)
_TF_DF_OPS = "SimpleML"  # TF-DF's inference ops: SimpleMLInferenceOp...
_FIX = ("Save the teacher as a Keras model (`model.save(dir)` or "
        "`tf.saved_model.save(model, dir, signatures=...)`) whose inputs are "
        "named after transformed features, or with "
        "distill_components.distiller.export.save_model, or give it a signature "
        "taking transformed features and returning 'logits' (or "
        "'probabilities') of shape [batch, K] and name it with "
        "`teacher_signature`.")


class TeacherContractError(ValueError):
  """The teacher SavedModel cannot be read the way the Distiller needs."""


class _Reading(NamedTuple):
  """How one way of reading the teacher calls it, and what it returns."""
  fn: Any                          # the traced function (its variables count)
  inputs: Dict[str, tf.TensorSpec]  # what it reads, by transformed feature name
  call: Callable[[Dict[str, tf.Tensor]], tf.Tensor]
  output: tf.TensorSpec
  kind: Optional[str]              # LOGITS, PROBABILITIES; None: predictions
  source: str


class Teacher:
  """A teacher SavedModel called on transformed features, returning logits."""

  def __init__(self, model_dir: str, feature_spec: Dict[str, tf.TensorSpec], *,
               task: tasks.Task, signature_name: Optional[str] = None,
               outputs: Optional[str] = None, imports: Sequence[str] = ()):
    if outputs not in (None, *_KINDS):
      raise TeacherContractError(
          f"teacher_outputs must be 'logits' or 'probabilities'; got {outputs!r}.")
    if outputs and not task.is_classification:
      raise TeacherContractError(
          f"teacher_outputs={outputs!r} was given for a regression task; a "
          "regression teacher's outputs are predictions, used as they are. "
          "Unset teacher_outputs.")
    # Keep the loaded object alive: the functions' variables belong to it.
    self._loaded = _load(model_dir, imports)
    signatures = self._loaded.signatures
    name = signature_name or export.TRANSFORMED_LOGITS_SIGNATURE
    if name in signatures:
      reading = _signature(name, signatures[name], outputs, task)
    elif signature_name:
      raise TeacherContractError(
          f"The teacher SavedModel at {model_dir} has no signature "
          f"{signature_name!r}; its signatures and their inputs: "
          f"{_describe(signatures)}. Unset "
          "teacher_signature to read its Keras model, or name one of these.")
    else:
      reading = _keras_model(self._loaded, model_dir, outputs, task)
    self._reading = reading
    self._task = task
    self.source = reading.source
    self._inputs = _check_inputs(reading.inputs, feature_spec, self.source)
    self.input_names = sorted(reading.inputs)
    shape = reading.output.shape
    if shape.rank != 2 or shape[-1] is None:
      raise TeacherContractError(
          f"The teacher ({self.source}) returns shape {shape}; the Distiller "
          "needs [batch, K] with K known (K = 1 for one logit or prediction).")
    self.width = int(shape[-1])
    self.num_params = sum(v.shape.num_elements() for v in reading.fn.variables)

  def raw_reader(self) -> Optional["RawReader"]:
    """The teacher read through its own `serving_default` on serialized raw
    tf.Examples, or None when that signature takes something else."""
    return RawReader.of(self._loaded, self.width, self._task)

  def logits(self, features: Dict[str, tf.Tensor],
             fold_rows: Optional[Dict[str, tf.Tensor]] = None) -> tf.Tensor:
    """[batch, K] float32 logits (regression: predictions) for a batch.

    `fold_rows` is for `OutOfFold`'s sake; one model ignores it."""
    del fold_rows
    inputs = {name: _conform(features[name], spec)
              for name, spec in self._inputs.items()}
    out = tf.cast(self._reading.call(inputs), tf.float32)
    if self._reading.kind == outputs_lib.PROBABILITIES:
      return losses.logits_from_probabilities(out)
    return out


class OutOfFold:
  """A teacher's out-of-fold models: each row's logits from the one not fit on it.

  `manifest` is the teacher's folds.json (`folds.read_manifest`); the other
  arguments are Teacher's, for every fold model. Call `logits` eagerly (as
  `teacher_cache.write` does): each fold model runs on its own rows only.
  """

  def __init__(self, model_uri: str, manifest: Dict, feature_spec, **teacher_args):
    self.folds = int(manifest["folds"])
    self._names = list(manifest["features"])
    self._teachers = [Teacher(folds_lib.model_dir(model_uri, i), feature_spec,
                              **teacher_args) for i in range(self.folds)]
    widths = {t.width for t in self._teachers}
    if len(widths) != 1:
      raise TeacherContractError(
          f"The out-of-fold models in {folds_lib.directory(model_uri)} emit "
          f"different widths {sorted(widths)}; each must emit the teacher's.")
    self.width = widths.pop()
    self.source = f"{self._teachers[0].source}, out of fold ({self.folds} models)"

  def logits(self, features: Dict[str, tf.Tensor],
             fold_rows: Optional[Dict[str, tf.Tensor]] = None) -> tf.Tensor:
    """Each row's logits from the fold model not fit on it, or, with
    `fold_rows` (one per row: a synthetic row's base row), on that row."""
    ids = tf.cast(folds_lib.fold_ids(
        features if fold_rows is None else fold_rows, self.folds, self._names), tf.int32)
    rows = tf.dynamic_partition(tf.range(tf.shape(ids)[0]), ids, self.folds)
    parts = []
    for teacher, index in zip(self._teachers, rows):
      if tf.executing_eagerly() and int(tf.size(index)) == 0:
        parts.append(tf.zeros([0, self.width], tf.float32))
        continue
      parts.append(teacher.logits(
          {name: tf.gather(features[name], index) for name in teacher.input_names}))
    return tf.dynamic_stitch(rows, parts)


class Ensemble:
  """Several teachers read as one: the mean of their logits (regression: of
  their predictions), as Hinton et al. (2015) distil an ensemble.

  `members` are Teachers or OutOfFolds (their `logits` are averaged), or
  RawReaders (called); all must emit the same width.
  """

  def __init__(self, members: Sequence[Any]):
    self.members = list(members)
    widths = {m.width for m in self.members}
    if len(widths) != 1:
      raise TeacherContractError(
          f"The teachers emit different widths {sorted(widths)}: "
          + "; ".join(f"{m.source}: {m.width}" for m in self.members)
          + ". Every teacher of one student must emit the same outputs.")
    self.width = widths.pop()
    self.source = (f"the mean of {len(self.members)} teachers: "
                   + "; ".join(m.source for m in self.members))
    self.num_params = sum(getattr(m, "num_params", 0) for m in self.members)
    self.input_names = sorted({n for m in self.members
                               for n in getattr(m, "input_names", ())})

  def raw_reader(self) -> Optional["Ensemble"]:
    """The members' raw readers as one, or None unless every member has one."""
    readers = [m.raw_reader() for m in self.members]
    return None if None in readers else Ensemble(readers)

  def logits(self, features: Dict[str, tf.Tensor],
             fold_rows: Optional[Dict[str, tf.Tensor]] = None) -> tf.Tensor:
    return tf.add_n([m.logits(features, fold_rows) for m in self.members]
                    ) / len(self.members)

  def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
    return tf.add_n([m(serialized) for m in self.members]) / len(self.members)


def one_or_ensemble(members: Sequence[Any]):
  """The only member, or the Ensemble of several."""
  return members[0] if len(members) == 1 else Ensemble(members)


class RawReader:
  """A teacher called as it serves: serialized raw tf.Examples in, through its
  own `serving_default` (its own Transform inside), [batch, K] logits out.

  For a teacher trained on another Transform than the student's (reused from
  an earlier span, imported from elsewhere): its transformed features would
  not be this run's. The output is the signature's only one, or the one named
  `logits`, `probabilities` or `predictions`; whether it holds logits or
  probabilities is read from its name, else from the op computing it.
  """

  def __init__(self, fn, output: str, kind: Optional[str], width: int):
    self._fn = fn
    self.width = width
    self._argument = next(iter(fn.structured_input_signature[1]))
    self._output, self._kind = output, kind
    self.source = f"its serving_default on raw examples ({output!r}, {kind or 'predictions'})"

  @classmethod
  def of(cls, loaded, width: int, task: tasks.Task) -> Optional["RawReader"]:
    fn = loaded.signatures.get("serving_default")
    if fn is None:
      return None
    arguments = fn.structured_input_signature[1]
    if len(arguments) != 1 or next(iter(arguments.values())).dtype != tf.string:
      return None
    returned = fn.structured_outputs
    named = [k for k in ("logits", "probabilities", "predictions") if k in returned]
    output = named[0] if named else (next(iter(returned)) if len(returned) == 1 else None)
    if output is None or returned[output].shape[-1] != width:
      return None
    if not task.is_classification:
      kind = None
    elif output in _KINDS:
      kind = output
    else:
      kind = outputs_lib.head(fn).kind if len(returned) == 1 else None
      if kind is None:
        return None
    return cls(fn, output, kind, width)

  def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
    out = tf.cast(self._fn(**{self._argument: serialized})[self._output], tf.float32)
    out = tf.reshape(out, [-1, out.shape[-1]])
    if self._kind == outputs_lib.PROBABILITIES:
      return losses.logits_from_probabilities(out)
    return out


def _load(model_dir: str, imports: Sequence[str] = ()):
  try:
    imported = custom_ops.import_modules(imports)
  except custom_ops.CustomOpsError as e:
    raise TeacherContractError(str(e)) from e
  if not tf.saved_model.contains_saved_model(model_dir):
    found = (sorted(tf.io.gfile.listdir(model_dir)) if tf.io.gfile.isdir(model_dir)
             else "nothing: it does not exist")
    raise TeacherContractError(
        f"{model_dir} holds no SavedModel (found {found}). The teacher must be "
        "the serving model a Trainer wrote: its Model artifact's Format-Serving "
        "directory.")
  try:
    return tf.saved_model.load(model_dir)
  except Exception as e:  # pylint: disable=broad-except
    # TensorFlow raises many types here; all mean the same to the user.
    missing = custom_ops.missing_ops_error(
        e, f"The teacher SavedModel at {model_dir}", imported)
    if missing:
      raise TeacherContractError(str(missing)) from e
    raise TeacherContractError(
        f"TensorFlow cannot load the teacher SavedModel at {model_dir}: {e}") from e


def _describe(signatures) -> str:
  """{'serving_default': ['examples'], ...}: what each signature reads."""
  return str({name: sorted(fn.structured_input_signature[1])
              for name, fn in sorted(signatures.items())})


def _signature(name: str, fn, outputs: Optional[str], task: tasks.Task) -> _Reading:
  """Path 1: a signature over transformed features, its output named by kind."""
  returned = fn.structured_outputs
  known = [k for k in _KINDS if k in returned]
  if len(returned) != 1 or not known:
    raise TeacherContractError(
        f"The teacher's {name!r} signature returns {sorted(returned)}; the "
        f"Distiller needs exactly one output named 'logits' or 'probabilities'.")
  kind = known[0]
  if outputs and outputs != kind:
    raise TeacherContractError(
        f"The teacher's {name!r} signature returns {kind!r} but "
        f"teacher_outputs says {outputs!r}. Unset teacher_outputs: the "
        "signature's output name says what it returns.")
  if not task.is_classification and kind == outputs_lib.PROBABILITIES:
    raise TeacherContractError(
        f"The teacher's {name!r} signature returns 'probabilities', but the task "
        "is regression: return the predictions as 'logits'.")
  return _Reading(fn, dict(fn.structured_input_signature[1]),
                  lambda inputs: fn(**inputs)[kind], returned[kind],
                  kind if task.is_classification else None,
                  f"signature {name!r} ({kind})")


def _keras_model(loaded, model_dir: str, outputs: Optional[str],
                 task: tasks.Task) -> _Reading:
  """Path 2: the restored Keras model's own call, in inference mode."""
  traced = getattr(getattr(loaded, "__call__", None), "concrete_functions", None)
  # Keras's SavedModel serialization leaves `keras_api` on every model and layer.
  if not hasattr(loaded, "keras_api") or not traced:
    raise TeacherContractError(
        f"The teacher SavedModel at {model_dir} has no signature "
        f"{export.TRANSFORMED_LOGITS_SIGNATURE!r} (its signatures and their "
        f"inputs: {_describe(loaded.signatures)}) and is not a Keras model (its object "
        f"graph has no Keras call to restore). {_FIX}")
  # A Keras call is traced for training=True and False; distil from inference.
  fn = next((f for f in traced if f.structured_input_signature[0][1:2] == (False,)),
            traced[0])
  args = fn.structured_input_signature[0]
  structure = args[0]  # one spec, a list of specs, or a dict of them
  # Each input's spec is read by its name: a dict's key (Keras feeds a dict
  # input by key), else the spec's own name. Never by position: tf.nest
  # orders a dict by sorted key, while the dict keeps the model's order.
  if isinstance(structure, dict):
    names = {k: k for k in structure}
    specs = dict(structure)
  else:
    names = tf.nest.map_structure(lambda s: s.name, structure)
    specs = {s.name: s for s in tf.nest.flatten(structure)
             if isinstance(s, tf.TensorSpec)}
  leaves = tf.nest.flatten(structure)
  if not all(isinstance(s, tf.TensorSpec) and s.name for s in leaves):
    raise TeacherContractError(
        f"The teacher's Keras model takes {structure}; the Distiller feeds it "
        f"dense transformed features by name, so each input must be a named "
        f"dense tensor (tf.keras.Input(name=...)). {_FIX}")
  returned = tf.nest.flatten(fn.structured_outputs)
  if len(returned) != 1:
    raise TeacherContractError(
        f"The teacher's Keras model returns {len(returned)} outputs "
        f"({fn.structured_outputs}); the Distiller needs one [batch, K] tensor. "
        "Give the teacher a `transformed_logits` signature returning the output "
        "to distil from.")

  def call(inputs):
    x = tf.nest.map_structure(lambda name: inputs[name], names)
    return tf.nest.flatten(fn(x, *args[1:]))[0]

  kind, source = _keras_kind(outputs_lib.head(fn), outputs, task,
                             tf_df=outputs_lib.uses_op(fn, _TF_DF_OPS))
  return _Reading(fn, specs, call, returned[0], kind, source)


def _keras_kind(head: outputs_lib.Head, outputs: Optional[str], task: tasks.Task,
                tf_df: bool = False):
  """(output kind, source) of a Keras teacher whose output `head` computes;
  `tf_df`: the model runs TF-DF's inference op."""
  if not task.is_classification:
    return None, f"Keras model ({head}; regression: predictions as they are)"
  if head.kind and outputs and head.kind != outputs:
    # The bug this guards against: a probability read as a logit (or back).
    raise TeacherContractError(
        f"teacher_outputs says {outputs!r}, but the teacher's Keras model "
        f"visibly emits {head.kind}: {head} (activation {head.activation}). "
        "Unset teacher_outputs.")
  if head.kind:
    return head.kind, (f"Keras model ({head}, activation {head.activation} -> "
                       f"{head.kind})")
  if outputs:
    return outputs, f"Keras model ({head}; teacher_outputs={outputs!r})"
  hint = (" This is a TF-DF model: its classifiers emit probabilities unless "
          "trained with apply_link_function=False (then logits)." if tf_df else "")
  raise TeacherContractError(
      f"Cannot tell whether the teacher's Keras model emits logits or "
      f"probabilities: {head}, neither a Sigmoid/Softmax (probabilities) nor a "
      "linear layer (logits). Set the Distiller's `teacher_outputs` to "
      f"'logits' or 'probabilities'.{hint}")


def _castable(have: tf.DType, want: tf.DType) -> bool:
  """Numbers cast to numbers, except floats to integers (that truncates)."""
  def numeric(d):
    return d.is_floating or d.is_integer or d.is_bool
  return have == want or (numeric(have) and numeric(want)
                          and not (have.is_floating and want.is_integer))


def _check_inputs(specs: Dict[str, tf.TensorSpec],
                  feature_spec: Dict[str, tf.TensorSpec],
                  source: str) -> Dict[str, tf.TensorSpec]:
  """Raises unless every input is a transformed feature that fits it."""
  missing = sorted(set(specs) - set(feature_spec))
  if missing:
    raise TeacherContractError(
        f"The teacher ({source}) reads {missing} (its inputs: {sorted(specs)}), "
        f"which the transformed examples do not have (they have "
        f"{sorted(feature_spec)}). Its inputs must be named after the "
        "transformed features the Transform graph outputs.")
  for name, want in specs.items():
    have = feature_spec[name]
    if not _castable(have.dtype, want.dtype):
      raise TeacherContractError(
          f"The teacher ({source}) wants {name!r} as {want.dtype.name}, but the "
          f"transformed examples hold {have.dtype.name}, which does not cast to "
          "it. Change the model's input dtype or the preprocessing_fn.")
    if not want.shape.is_compatible_with(_expanded(have.shape, want.shape)):
      raise TeacherContractError(
          f"The teacher ({source}) wants {name!r} of shape {want.shape}, but the "
          f"transformed examples hold shape {have.shape}.")
  return specs


def _expanded(have: tf.TensorShape, want: tf.TensorShape) -> tf.TensorShape:
  """[batch] features fed to [batch, 1] inputs, as a live Keras model allows."""
  if (have.rank is not None and want.rank == have.rank + 1
      and want[-1] == 1):
    return have.concatenate([1])
  return have


def _conform(x: tf.Tensor, spec: tf.TensorSpec) -> tf.Tensor:
  if x.dtype != spec.dtype:
    x = tf.cast(x, spec.dtype)
  if _expanded(x.shape, spec.shape).rank != x.shape.rank:
    x = tf.expand_dims(x, -1)
  return x
