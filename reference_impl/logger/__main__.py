"""``python -m reference_impl.logger``: see ``main``."""

import sys

from reference_impl.logger.main import main

sys.exit(main())
