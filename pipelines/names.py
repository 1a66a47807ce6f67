"""Names shared by the pipeline, the gates and the summary.

Component ids, the models' names in the Evaluators' results, and the gates'
names, so no module imports another just for a string.
"""

# The models in the Evaluators' EvalConfigs and results.
STUDENT = "student"
TEACHER = "teacher"
SERVING = "serving"  # the latest blessed student: what is serving

# Component ids in the pipeline (and node ids in MLMD).
SCHEMA_GEN = "SchemaGen"
SCHEMA_IMPORTER = "SchemaImporter"
DATA_GATE = "DataGate"
TRAINER = "Trainer"
UNLABELED_EXAMPLE_GEN = "UnlabeledExampleGen"
TEACHER_IMPORTER = "TeacherImporter"
SERVING_RESOLVER = "LatestBlessedStudentResolver"
DISTILLER = "Distiller"
FIDELITY_EVALUATOR = "FidelityEvaluator"
NO_REGRESSION_EVALUATOR = "NoRegressionEvaluator"
PUSHER = "Pusher"

# The gates, by the Evaluator that holds each, in the order they run.
GATES = {
    FIDELITY_EVALUATOR: "fidelity (student vs teacher)",
    NO_REGRESSION_EVALUATOR: "no regression (student vs serving model)",
}
