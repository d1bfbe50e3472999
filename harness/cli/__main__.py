"""``python -m harness.cli``: the ``crucible`` command."""

import sys

from harness.cli.main import main

sys.exit(main())
