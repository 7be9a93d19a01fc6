"""``python -m monai_ag.visualize.attention`` (see :func:`monai_ag.visualize.attention.figure.main`)."""

from __future__ import annotations

import sys

from monai_ag.visualize.attention.figure import main

if __name__ == "__main__":
    sys.exit(main())
