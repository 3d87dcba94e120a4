"""``python -m opsproof.containers``: build opsproof's own images now (see ``images.main``)."""

from opsproof.containers.images import main

raise SystemExit(main())
