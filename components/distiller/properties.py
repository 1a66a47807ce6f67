"""The names of what is recorded in ML Metadata, in one place.

The Distiller writes these custom properties on its student `Model`; the
console summary, the report and the benchmarks read them. TFX's own (the
Evaluator's blessing, the Pusher's pushed model) are repeated here, with where
TFX defines them, so a reader finds every property name in one module (and
this one imports without loading TFX).
"""

# On the Distiller's student Model.
TEACHER_URI = "teacher_uri"
TEACHERS = "teachers"  # how many teachers' outputs were averaged
TEACHER_URIS = "teacher_uris"  # JSON list, with several teachers
TEACHER_SOURCE = "teacher_source"  # how the teacher was read (signature, Keras)
TASK = "task"  # Task.value: binary, multiclass, regression
TEMPERATURE = "temperature"
ALPHA = "alpha"
CACHE_TEACHER_OUTPUTS = "cache_teacher_outputs"  # 1 or 0
# Where the train split's teacher outputs were computed: beam, in_process
# (once, before training: labelling.py), or online (every batch).
TEACHER_LABELLING = "teacher_labelling"
# k: the train split's soft labels came from k out-of-fold models; 0: the teacher.
TEACHER_FOLDS = "teacher_folds"
# The examples the student learnt from: the labelled train split (when its
# teacher outputs were computed before training), and the transfer set's
# unlabeled and synthetic rows (soft term only).
LABELLED_EXAMPLES = "labelled_examples"
UNLABELED_EXAMPLES = "unlabeled_examples"
SYNTHETIC_EXAMPLES = "synthetic_examples"
TEACHER_PARAMS = "teacher_params"
STUDENT_PARAMS = "student_params"
COMPRESSION_RATIO = "compression_ratio"  # teacher params / student params
TEACHER_SAVED_MODEL_BYTES = "teacher_saved_model_bytes"
STUDENT_SAVED_MODEL_BYTES = "student_saved_model_bytes"
EVAL_PREFIX = "eval_"  # eval_<metric>: the Distiller's own eval, e.g. eval_agreement
EVAL_AGREEMENT = EVAL_PREFIX + "agreement"
# The student alone and which student went on (choice.py).
DISTILLED, ALONE = "distilled", "alone"  # the two students
VALIDATION, EVAL = "validation", "eval"  # where they were scored
STUDENT_CHOSEN = "student_chosen"  # DISTILLED or ALONE
CHOICE_METRIC = "choice_metric"  # the metric that chose, e.g. auc
VALIDATION_FRACTION = "validation_fraction"
# Rows each student was scored on (choice.SCORED_ROWS at most): of the
# validation cut (train rows), and of the eval split.
VALIDATION_EXAMPLES = "validation_examples"
SCORED_EVAL_EXAMPLES = "scored_eval_examples"
# Seconds the Distiller spent scoring both students (TFMA); the student
# alone trains in the same loop as the distilled one (bench/worth_cost.py).
SCORING_SECONDS = "scoring_seconds"
COMPARE_ALONE = "compare_alone"  # 0 when the Distiller was told not to compare
# The zero-code teacher's candidates, as its Trainer chose among them: JSON
# {candidate: {metric: value on the validation cut}}, and the one kept.
TEACHER_CANDIDATES = "teacher_candidates"
TEACHER_CHOSEN = "teacher_chosen"


def figure(model: str, part: str, metric: str) -> str:
  """A student's figure: e.g. figure("alone", "eval", "auc") -> alone_eval_auc."""
  return f"{model}_{part}_{metric}"

# TFX's: an Evaluator's ModelBlessing (tfx.components.evaluator.constants).
BLESSED = "blessed"
CURRENT_MODEL = "current_model"
BASELINE_MODEL = "baseline_model"
# TFX's: the Pusher's PushedModel (private in tfx.components.pusher.executor).
PUSHED = "pushed"
PUSHED_DESTINATION = "pushed_destination"

# On an execution `tfx-distill run` found unfinished (its process killed, or
# interrupted): why it was marked failed or canceled.
UNFINISHED_REASON = "unfinished_reason"

# On both LiteRT Model artifacts (distill_components.litert).
LITERT_MODE = "litert_mode"  # float32 | int8 | int8_with_float_ops | dynamic_range
LITERT_BYTES = "litert_bytes"
LITERT_FLOAT_OPS = "litert_float_ops"  # JSON list: ops the int8 file left in float
LITERT_FLOAT_GAP = "litert_float_gap"  # max |float LiteRT - SavedModel| on eval rows
# On the LiteRT gate's examples: how many transformed eval rows (the first
# ones) the gate scores.
GATE_EXAMPLES = "gate_examples"
# JSON list, one row per model (teacher, student, litert_float32, litert_int8):
# file_bytes, own_bytes (without the Transform), params, latency_ms by batch.
COMPRESSION = "compression"
