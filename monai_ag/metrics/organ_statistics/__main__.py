"""``python -m monai_ag.metrics.organ_statistics``: organ statistics of an image and its label map (see
:func:`monai_ag.metrics.organ_statistics.table.main`)."""

from __future__ import annotations

import sys

from monai_ag.metrics.organ_statistics.table import main

if __name__ == "__main__":
    sys.exit(main())
