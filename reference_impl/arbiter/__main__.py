"""``python -m reference_impl.arbiter``: see ``main``."""

import sys

from reference_impl.arbiter.main import main

sys.exit(main())
