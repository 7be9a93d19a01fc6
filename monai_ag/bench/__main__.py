"""Entry point of ``python -m monai_ag.bench`` (see :func:`monai_ag.bench.command.main`)."""

from __future__ import annotations

from monai_ag.bench.command import main

if __name__ == "__main__":
    main()
