"""``python -m monai_ag.data.import_ct`` (see :func:`monai_ag.data.import_ct.main`)."""

from __future__ import annotations

import sys

from monai_ag.data.import_ct import main

if __name__ == "__main__":
    sys.exit(main())
