"""What a model's output is, logits or probabilities, read from its graph.

A Keras model restored from a SavedModel has no layer configs when it was saved
with `tf.saved_model.save` (as TFX's examples save it): `load_model` refuses
it, and nothing records that its last Dense had `activation="sigmoid"`. The
graph does: the op that computes the output is a `Sigmoid`, a `Softmax`, or
the `BiasAdd` / `MatMul` of a linear layer. `head` finds that op, following
the output through ops that only change its shape or type (a final `Reshape`
or `Flatten`, squeeze, expand_dims, identities, casts), into the functions
that restored (and live) Keras layers are called as, and back out of them
through their arguments, so the same answer comes from a live model, a
`model.save` directory and a `tf.saved_model.save` directory. TFX's own taxi
module ends in `Dense(1, activation='sigmoid')` then `Reshape((1,))`: the
Reshape layer's function reshapes its argument, which is the Sigmoid's output
in the caller.

Anything else (a clip, a division, a ReLU) cannot be told apart: the caller
must say what it is.
"""

from typing import NamedTuple, Optional

LOGITS = "logits"
PROBABILITIES = "probabilities"

# The op that computes a model's output -> (Keras activation, output kind).
_KNOWN_OPS = {
    "Sigmoid": ("sigmoid", PROBABILITIES),
    "Softmax": ("softmax", PROBABILITIES),
    "BiasAdd": ("linear", LOGITS),  # Dense(activation=None / "linear")
    "MatMul": ("linear", LOGITS),   # the same without a bias
}
# Ops that hand their first input on unchanged in meaning: a final
# Activation("linear"), Reshape or Flatten layer, tf.squeeze / tf.expand_dims,
# or a mixed-precision cast to float32.
_PASS_THROUGH = {"Identity", "Cast", "Reshape", "Squeeze", "ExpandDims",
                 "EnsureShape", "StopGradient", "Snapshot"}
_CALLS = {"StatefulPartitionedCall", "PartitionedCall"}


class Head(NamedTuple):
  """The op that computes a model's (first) output, and what that makes it."""
  op: Optional[str]          # e.g. "Sigmoid"; None if the output is an input
  layer: Optional[str]       # the Keras layer whose name scopes the op, if any
  activation: Optional[str]  # "sigmoid", "softmax", "linear", or None: unknown
  kind: Optional[str]        # LOGITS, PROBABILITIES, or None: cannot tell

  def __str__(self) -> str:
    where = f"layer {self.layer!r} ends in" if self.layer else "the output is"
    return f"{where} {self.op or 'an input'}"


def _layer_of(node_name: str) -> Optional[str]:
  """'model/dense_1/Sigmoid' -> 'dense_1'; 'dense_1/StatefulPartitionedCall'
  -> 'dense_1'; 'Sigmoid' -> None. Keras names op scopes after layers."""
  scope = node_name.rpartition("/")[0]
  return scope.rpartition("/")[2] or None


def head(fn) -> Head:
  """The op behind `fn`'s first output (a tf ConcreteFunction), unchanged."""
  library = {f.signature.name: f for f in fn.graph.as_graph_def().library.function}
  fdef = fn.function_def
  ref = fdef.ret[fdef.signature.output_arg[0].name]
  callers = []  # (function, call node) of each call followed into
  layer = None
  for _ in range(10000):  # a graph is acyclic; this only bounds a surprise
    nodes = {n.name: n for n in fdef.node_def}
    name, _, rest = ref.partition(":")
    node = nodes.get(name)
    if node is None:
      arguments = [a.name for a in fdef.signature.input_arg]
      if not callers or name not in arguments:
        return Head(None, layer, None, None)  # the model's output is its input
      # Argument i of a called function is input i of the call, in the caller.
      fdef, call = callers.pop()
      ref = [i for i in call.input if not i.startswith("^")][arguments.index(name)]
      continue
    layer = _layer_of(name) or layer
    if node.op in _PASS_THROUGH:
      ref = node.input[0]
    elif node.op in _CALLS and node.attr["f"].func.name in library:
      # Output i of the call is output i of the called function.
      callers.append((fdef, node))
      fdef = library[node.attr["f"].func.name]
      index = int(rest.rpartition(":")[2] or 0)
      ref = fdef.ret[fdef.signature.output_arg[index].name]
    else:
      activation, kind = _KNOWN_OPS.get(node.op, (None, None))
      return Head(node.op, layer, activation, kind)
  return Head(None, layer, None, None)


def uses_op(fn, prefix: str) -> bool:
  """Whether `fn` (a tf ConcreteFunction) or a function it calls runs an op
  whose type starts with `prefix` (e.g. TF-DF's "SimpleML")."""
  graph = fn.graph.as_graph_def()
  return any(node.op.startswith(prefix) for node in graph.node) or any(
      node.op.startswith(prefix) for f in graph.library.function for node in f.node_def)
