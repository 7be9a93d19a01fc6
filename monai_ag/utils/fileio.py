"""The project's one way to write a file safely: never half-written, never silently replaced.

Every writer of the package (report files, phantom cases, predictions, checkpoints, benchmark results)
goes through :func:`atomic_write` (or :func:`atomic_writes` for files that belong together) and checks
its outputs with :func:`refuse_overwrite`; readers that must recognise a writer's leftovers use
:func:`final_name`.

Example::

    from monai_ag.utils.fileio import atomic_write, refuse_overwrite

    refuse_overwrite("eval/summary.json", overwrite=False)
    with atomic_write("eval/summary.json") as tmp:
        tmp.write_text("{}")
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from monai_ag.utils.config import as_bool

__all__ = [
    "atomic_write",
    "atomic_writes",
    "final_name",
    "refuse_overwrite",
    "remove_stale_temporaries",
    "sha256_file",
    "temporary_path",
]

#: ``.partial-<pid>-<12 hex digits>-<final name>``: the name :func:`temporary_path` gives.
_TEMPORARY_RE = re.compile(r"^\.partial-(?P<pid>\d+)-[0-9a-f]{12}-(?P<name>.+)$")


def temporary_path(path: str | os.PathLike) -> Path:
    """
    A unique hidden sibling of ``path``, ``dir/.partial-<pid>-<token>-<name>``: it ends with the full
    file name, so writers that pick the format by extension (``.nii.gz``, ``.pt``) write the same format.

    Example::

        temporary_path("out/case_seg.nii.gz")  # out/.partial-4242-0123456789ab-case_seg.nii.gz
    """
    p = Path(path)
    return p.with_name(f".partial-{os.getpid()}-{uuid.uuid4().hex[:12]}-{p.name}")


def final_name(name: str) -> str:
    """
    The file name a temporary file of :func:`temporary_path` stands for (``name`` itself when it is
    not one), so a directory scan can tell a writer's leftovers from foreign files.

    Example::

        final_name(".partial-4242-0123456789ab-phantom_000.nii.gz")  # "phantom_000.nii.gz"
        final_name("dataset.json")  # "dataset.json"
    """
    match = _TEMPORARY_RE.match(name)
    return match.group("name") if match else name


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """
    Remove the temporary files of :func:`temporary_path` for ``path`` whose writer process no longer
    exists on this machine: what a write killed before its rename (SIGKILL, power loss) left behind.
    A live writer's file is kept. Called after every successful :func:`atomic_write`.

    Returns:
        the removed files.

    Example::

        remove_stale_temporaries("models/checkpoint.pt")  # drops models/.partial-<dead pid>-...-checkpoint.pt
    """
    final = Path(path)
    removed = []
    for candidate in final.parent.glob(f".partial-*-{final.name}"):
        match = _TEMPORARY_RE.match(candidate.name)
        if match is None or match.group("name") != final.name or _process_exists(int(match.group("pid"))):
            continue
        candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


@contextmanager
def atomic_write(path: str | os.PathLike, fsync: bool = True) -> Iterator[Path]:
    """
    Context manager giving a temporary path to write ``path``'s new content to; on a clean exit the
    temporary file is flushed to disk and renamed over ``path`` in one step (``os.replace``), so an
    interrupted write leaves the previous file (or none), never a truncated one. On an exception the
    temporary file is removed; a write killed outright leaves its temporary file, which the next
    successful write of ``path`` removes (:func:`remove_stale_temporaries`). The parent directory is created if needed.
    The temporary file is created
    by the writer, so it gets the usual permissions (umask), and it is a hidden sibling of ``path`` (see
    :func:`temporary_path`), on the same file system, so the rename is atomic.

    Args:
        path: the final file.
        fsync: flush the temporary file to disk before the rename (needed for crash safety; off only
            for throw-away files).

    Raises:
        FileNotFoundError: when the block wrote nothing to the temporary path (``path`` is left as it was).

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
            _fsync(tmp)
        os.replace(tmp, final)
        remove_stale_temporaries(final)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_writes(paths: Sequence[str | os.PathLike], fsync: bool = True) -> Iterator[list[Path]]:
    """
    :func:`atomic_write` for files that belong together: yields one temporary path per file; only when
    the block has written all of them are they renamed into place, **in the order given**, so a reader
    that checks the last file (e.g. an overwrite guard looking at ``metrics.csv``) sees either the old set
    or the complete new one. On an exception nothing is replaced and every temporary file is removed.

    Args:
        paths: the final files, in the order they are to be replaced (the one that marks completion last).
        fsync: as in :func:`atomic_write`.

    Example::

        with atomic_writes(["report/summary.json", "report/metrics.csv"]) as (summary_tmp, metrics_tmp):
            summary_tmp.write_text("{}")
            metrics_tmp.write_text("case,dice\\n")
    """
    with ExitStack() as stack:
        # an ExitStack unwinds last-in first-out: entering the files in reverse renames them in order
        temps = [stack.enter_context(atomic_write(p, fsync=fsync)) for p in reversed(list(paths))]
        yield temps[::-1]


def refuse_overwrite(path: str | os.PathLike, overwrite: bool = False, option: str = "--overwrite true") -> str:
    """
    Stop before any work when ``path`` exists and ``overwrite`` is off: a run must not replace
    earlier results without being told to.

    Args:
        path: the file (or directory) that the run would write.
        overwrite: allow replacing it (``"true"``/``"false"`` strings from a bundle command line work).
        option: how the user allows it, quoted in the message (e.g. ``"overwrite=True"`` for a Python API).

    Returns:
        ``path`` as a string, so a config can use the call as a value.

    Raises:
        FileExistsError: naming ``path`` and ``option``.

    Example::

        refuse_overwrite("eval/metrics.csv", "false")  # raises when eval/metrics.csv exists
    """
    if Path(path).exists() and not as_bool(overwrite, "overwrite"):
        raise FileExistsError(
            f"{path} already exists from an earlier run; pass {option} to replace it or choose another output."
        )
    return str(path)


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file (hex), read in chunks: what a record uses to name the exact file it describes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
