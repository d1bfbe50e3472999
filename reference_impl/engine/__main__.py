"""``python -m reference_impl.engine``: see ``main``."""

import sys

from reference_impl.engine.main import main

sys.exit(main())
