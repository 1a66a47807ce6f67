"""`python -m distill_cli ...`: the `tfx-distill` command."""
import sys

from distill_cli.main import main

sys.exit(main())
