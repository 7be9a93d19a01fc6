"""``python -m monai_ag.bundle.export``: export a trained model with its recipe
(see :func:`monai_ag.bundle.export.exporter.main`)."""

from __future__ import annotations

import sys

from monai_ag.bundle.export.exporter import main

if __name__ == "__main__":
    sys.exit(main())
