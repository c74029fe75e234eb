"""`python -m mailbot.cli`: the same as the `mailbot` console script."""

import sys

from . import main

sys.exit(main())
