"""Atomic output: write to a temporary sibling, rename into place only when complete."""

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``final`` and move it onto ``final`` on success.

    Works for files and directories (e.g. a zarr group). If the body raises, the temporary
    output is removed and ``final`` is left exactly as it was, so nothing half written survives.

    Parameters
    ----------
    final : str or os.PathLike
        Where the finished output must end up. Its parent directory is created if needed.

    Yields
    ------
    pathlib.Path
        A path in the same directory (hence the same file system) to write to.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def write_ecsv(table, path: str | os.PathLike) -> None:
    """Write an astropy table as ECSV, atomically.

    Parameters
    ----------
    table : astropy.table.Table
    path : str or os.PathLike
    """
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv")


def write_json(payload, path: str | os.PathLike) -> None:
    """Write a JSON document (indented, keys sorted, NumPy floats as floats), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=float)
        handle.write("\n")
