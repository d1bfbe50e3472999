"""``python -m reference_impl.gateway``: see ``main``."""

import sys

from reference_impl.gateway.main import main

sys.exit(main())
