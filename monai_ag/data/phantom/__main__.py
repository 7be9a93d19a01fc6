"""``python -m monai_ag.data.phantom``: write a phantom dataset (see :func:`monai_ag.data.phantom.dataset.main`)."""

from __future__ import annotations

import sys

from monai_ag.data.phantom.dataset import main

if __name__ == "__main__":
    sys.exit(main())
