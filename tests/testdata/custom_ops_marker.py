"""Stands for a user's library of TensorFlow custom ops in tests: a module that
nothing but an explicit `teacher_imports` / `model_imports` ever imports."""
