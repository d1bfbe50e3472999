"""``python -m reference_impl.sequencer``: see ``main``."""

import sys

from reference_impl.sequencer.main import main

sys.exit(main())
