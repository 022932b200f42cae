"""``python -m cli``: the ``liveupload`` command."""

import sys

from cli.main import main

sys.exit(main())
