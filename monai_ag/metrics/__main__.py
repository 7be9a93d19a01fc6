"""``python -m monai_ag.metrics``: the evaluation report of a folder of predictions
(see :func:`monai_ag.metrics.report.main`)."""

from __future__ import annotations

import sys

from monai_ag.metrics.report import main

if __name__ == "__main__":
    sys.exit(main())
