"""Zero-code modules for any CSV: preprocessing, teacher and student.

`preprocessing.preprocessing_fn` (Transform), `teacher.run_fn` (Trainer) and
`student.build_student` (Distiller) read the label and the task from
`custom_config` (keys in `config`) and nothing else: no column is named here.
"""
