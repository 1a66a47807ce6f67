"""How the Distiller reads a teacher, and the check that it can.

The contract: the teacher's serving SavedModel (the directory the Trainer wrote,
`Format-Serving` inside its Model artifact) has a signature, by default
`transformed_logits`, that

- takes transformed features as keyword arguments, each one a feature the
  Transform graph produces, with the same dtype;
- returns one [batch, K] tensor named `logits`, or `probabilities` (converted
  back to logits here; prefer logits, they lose nothing at high confidence).

`distill_components.distiller.export.save_model` writes such a signature; any
teacher can add one by hand with `tf.saved_model.save(..., signatures=...)`.
"""

from typing import Dict

import tensorflow as tf

from distill_components.distiller import export
from distill_components.distiller import losses


class TeacherContractError(ValueError):
  """The teacher SavedModel cannot be read the way the Distiller needs."""


class Teacher:
  """A teacher SavedModel called on transformed features, returning logits."""

  def __init__(self, model_dir: str, signature_name: str,
               feature_spec: Dict[str, tf.TensorSpec]):
    self.model_dir = model_dir
    # Keep the loaded object alive: the signature's variables belong to it.
    self._loaded = tf.saved_model.load(model_dir)
    signatures = self._loaded.signatures
    if signature_name not in signatures:
      raise TeacherContractError(
          f"The teacher SavedModel at {model_dir} has no signature "
          f"{signature_name!r}; it has {sorted(signatures)}. The Distiller needs a "
          "signature that takes transformed features and returns 'logits' (or "
          "'probabilities') of shape [batch, K]: save the teacher with "
          "distill_components.distiller.export.save_model, or name the signature "
          "with `teacher_signature`.")
    self._fn = signatures[signature_name]
    _, inputs = self._fn.structured_input_signature
    missing = sorted(set(inputs) - set(feature_spec))
    if missing:
      raise TeacherContractError(
          f"The teacher's {signature_name!r} signature reads {missing}, which the "
          f"transformed examples do not have (they have {sorted(feature_spec)}).")
    for name, spec in inputs.items():
      if spec.dtype != feature_spec[name].dtype:
        raise TeacherContractError(
            f"The teacher's {signature_name!r} signature wants {name!r} as "
            f"{spec.dtype.name}, but the transformed examples hold "
            f"{feature_spec[name].dtype.name}.")
    self.input_names = sorted(inputs)
    outputs = self._fn.structured_outputs
    known = [k for k in (export.LOGITS_OUTPUT, export.PROBABILITIES_OUTPUT)
             if k in outputs]
    if len(outputs) != 1 or not known:
      raise TeacherContractError(
          f"The teacher's {signature_name!r} signature returns {sorted(outputs)}; "
          f"the Distiller needs exactly one output named "
          f"{export.LOGITS_OUTPUT!r} or {export.PROBABILITIES_OUTPUT!r}.")
    self.output_name = known[0]
    shape = outputs[self.output_name].shape
    if shape.rank != 2 or shape[-1] is None:
      raise TeacherContractError(
          f"The teacher's {signature_name!r} output {self.output_name!r} has "
          f"shape {shape}; the Distiller needs [batch, K] with K known.")
    self.width = int(shape[-1])

  @property
  def num_params(self) -> int:
    """Number of weights the teacher's signature reads."""
    return sum(v.shape.num_elements() for v in self._fn.variables)

  def logits(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    outputs = self._fn(**{name: features[name] for name in self.input_names})
    if self.output_name == export.PROBABILITIES_OUTPUT:
      return losses.logits_from_probabilities(outputs[self.output_name])
    return outputs[self.output_name]
