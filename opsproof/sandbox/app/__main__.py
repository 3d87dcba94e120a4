"""``python -m opsproof.sandbox.app``: run the sandbox's reference application."""

import sys

from .server import main

sys.exit(main())
