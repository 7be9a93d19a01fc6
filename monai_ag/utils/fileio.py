"""The project's one way to write a file safely: never half-written, never silently replaced."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "refuse_overwrite", "temporary_path"]


def temporary_path(path: str | os.PathLike) -> Path:
    """A unique hidden sibling of ``path``, ``dir/.partial-<pid>-<token>-<name>``: it ends with the full
    file name, so writers that pick the format by extension (``.nii.gz``, ``.pt``) write the same format."""
    p = Path(path)
    return p.with_name(f".partial-{os.getpid()}-{uuid.uuid4().hex[:12]}-{p.name}")


@contextmanager
def atomic_write(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """
    Context manager giving a temporary path to write ``path``'s new content to; on a clean exit the
    temporary file is flushed to disk and renamed over ``path`` in one step (``os.replace``), so an
    interrupted write leaves the previous file (or none), never a truncated one. On an exception the
    temporary file is removed. The parent directory is created if needed.

    Args:
        path: the final file.
        fsync: flush the temporary file to disk before the rename (needed for crash safety; off only
            for throw-away files).

    Example::

        with atomic_write("models/checkpoint.pt") as tmp:
            torch.save(state, tmp)
        with atomic_write("eval/summary.json") as tmp:
            tmp.write_text(json.dumps(summary))
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(final)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_write({final}): nothing was written to the temporary file {tmp}.")
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def refuse_overwrite(path: str | os.PathLike, overwrite: bool = False, option: str = "--overwrite true") -> str:
    """
    Stop before any work when ``path`` exists and ``overwrite`` is off: a run must not replace
    earlier results without being told to.

    Args:
        path: the file (or directory) that the run would write.
        overwrite: allow replacing it (``"true"``/``"false"`` strings from a bundle command line work).
        option: how the user allows it, quoted in the message.

    Returns:
        ``path`` as a string, so a config can use the call as a value.
    """
    from monai_ag.utils.bundle import as_bool  # noqa: PLC0415 (bundle imports this module)

    if Path(path).exists() and not as_bool(overwrite, "overwrite"):
        raise FileExistsError(f"{path} already exists from an earlier run; pass {option} to replace it or choose another output.")
    return str(path)
