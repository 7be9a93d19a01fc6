"""Entry point of ``python -m monai_ag.bench``."""

from __future__ import annotations

from monai_ag.bench.benchmark import main

if __name__ == "__main__":
    main()
