"""`python -m dataward` runs the command line."""

import sys

from dataward.cli import main

sys.exit(main())
