"""``python -m monai_ag.visualize``: the figure of a segmented case (see :func:`monai_ag.visualize.figures.main`)."""

from __future__ import annotations

import sys

from monai_ag.visualize.figures import main

if __name__ == "__main__":
    sys.exit(main())
