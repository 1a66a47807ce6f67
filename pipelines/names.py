"""Names shared by the pipeline, the gates and the summary.

Component ids, the models' names in the Evaluator's results, and the MLMD
custom properties the Distiller writes, so no module imports another just
for a string.
"""

# The two models in the Evaluator's EvalConfig and results.
STUDENT = "student"
TEACHER = "teacher"

# Component ids in the pipeline (and node ids in MLMD).
TRAINER = "Trainer"
TEACHER_IMPORTER = "TeacherImporter"
DISTILLER = "Distiller"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"
