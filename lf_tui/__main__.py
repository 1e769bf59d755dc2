"""`python -m lf_tui` runs the CLI."""

import sys

from lf_tui.cli import main

sys.exit(main())
