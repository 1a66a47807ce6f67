"""The `tfx-distill` command line: one entry point above the local and the
Kubeflow commands (import name `distill_cli`; see `main`)."""
