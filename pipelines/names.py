"""Names shared by the pipeline, the gates and the summary.

Component ids, the models' names in the Evaluators' results, the gates'
names, and the keys of the components' inputs and outputs, so no module
imports another just for a string.
"""

# The models in the Evaluators' EvalConfigs and results.
STUDENT = "student"
TEACHER = "teacher"
SERVING = "serving"  # the latest blessed student: what is serving
LITERT_INT8 = "litert_int8"  # the LiteRT gate's candidate
LITERT_FLOAT32 = "litert_float32"  # and its baseline

# Component ids in the pipeline (and node ids in MLMD).
SCHEMA_GEN = "SchemaGen"
SCHEMA_IMPORTER = "SchemaImporter"
DATA_GATE = "DataGate"
TRAINER = "Trainer"
UNLABELED_EXAMPLE_GEN = "UnlabeledExampleGen"
TEACHER_IMPORTER = "TeacherImporter"
SERVING_RESOLVER = "LatestBlessedStudentResolver"
DISTILLER = "Distiller"
SCORER = "Scorer"  # the gates' one pass of inference over the eval split
FIDELITY_EVALUATOR = "FidelityEvaluator"
NO_REGRESSION_EVALUATOR = "NoRegressionEvaluator"
PUSHER = "Pusher"
LITERT_EXPORT = "LiteRTExport"
LITERT_EVALUATOR = "LiteRTEvaluator"  # int8 vs float32: only the int8 file's push

# The gates, by the Evaluator that holds each, in the order they run.
GATES = {
    FIDELITY_EVALUATOR: "fidelity (student vs teacher)",
    NO_REGRESSION_EVALUATOR: "no regression (student vs serving model)",
}

# The keys of TFX components' inputs and outputs, as MLMD records them: TFX's
# own `standard_component_specs` values (tests/test_gates.py checks they are),
# named here because importing TFX takes half a minute.
MODEL_KEY = "model"
BASELINE_MODEL_KEY = "baseline_model"
MODEL_RUN_KEY = "model_run"
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"
PUSHED_MODEL_KEY = "pushed_model"
