"""Run the ``minirec`` command as ``python -m minirec``."""

import sys

from .cli import main

sys.exit(main())
