"""``python -m analysis``: same as the ``survey-analysis`` console script."""
import sys

from analysis.cli import main

sys.exit(main())
