"""``python -m clipviz``: the same as the ``clipviz`` command."""

from __future__ import annotations

import sys

from clipviz.cli import main

sys.exit(main())
