"""Atomic output: write to a temporary sibling, rename into place only when complete.

Nothing the tool did not create is ever deleted. Before any work, :func:`check_output_path` refuses an output path
of the wrong type (an existing directory where a file goes, a file where a directory goes), a directory that does
not hold a previous output of the same kind, and the working directory or any of its ancestors. A temporary
``.NAME.tmp-PID`` left behind by a killed process is removed by the next write of ``NAME``.
"""

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bayesrb.errors import BadInputError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _is_working_directory_or_ancestor(path: Path) -> bool:
    here = Path.cwd().resolve()
    return path == here or path in here.parents


def check_output_path(final: str | os.PathLike, *, directory_signature: str | None = None) -> Path:
    """Check that writing an output to ``final`` can lose nothing the tool did not create.

    Parameters
    ----------
    final : str or os.PathLike
        The output path as the user or the workflow gave it (a trailing slash means a directory).
    directory_signature : str, optional
        For a directory output: the name of a file that every output of this kind holds (``"zarr.json"`` for a zarr
        store, ``"model.json"`` for a model). An existing directory is replaced only if it is empty or holds this
        file. ``None`` (the default): the output is a file.

    Returns
    -------
    pathlib.Path
        ``final`` as a path.

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``final`` is the working directory or one of its ancestors, an existing directory (or a name with a
        trailing slash) where a file goes, an existing file where a directory goes, or an existing directory that
        holds something other than a previous output of the same kind.
    """
    text = os.fspath(final)
    path = Path(text)
    resolved = path.resolve()
    if _is_working_directory_or_ancestor(resolved):
        raise BadInputError(text, "is the working directory or one of its parents; refusing to write an output there")
    if directory_signature is None:
        if path.is_dir() or text.endswith(("/", os.sep)):
            raise BadInputError(text, "is a directory, but the output is a file; give a file name")
        return path
    if path.exists() and not path.is_dir():
        raise BadInputError(text, "is an existing file, but the output is a directory; give another name")
    if path.is_dir() and any(path.iterdir()) and not (path / directory_signature).is_file():
        raise BadInputError(text, f"is an existing directory that is not a previous output of this kind (it holds no "
                                  f"{directory_signature}); refusing to replace it: remove it or give another name")
    return path


def _remove_stale_temporaries(final: Path) -> None:
    """Remove ``.NAME.tmp-PID*`` siblings of ``final`` whose process no longer runs."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.tmp-(\d+)(-old)?")
    if not final.parent.is_dir():
        return
    for sibling in final.parent.iterdir():
        match = pattern.fullmatch(sibling.name)
        if match and not _process_running(int(match.group(1))):
            _remove(sibling)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` onto ``final``; a previous directory output is moved aside first and removed after."""
    if not (final.is_dir() and not final.is_symlink()):
        os.replace(tmp, final)
        return
    old = final.with_name(f"{tmp.name}-old")
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old)


@contextmanager
def atomic_path(final: str | os.PathLike, *, directory_signature: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``final`` and move it onto ``final`` on success.

    Works for files and directories (e.g. a zarr group). ``final`` is checked first
    (:func:`check_output_path`), so a path that would lose something the tool did not create is refused before
    any work. If the body raises, the temporary output is removed and ``final`` is left exactly as it was, so
    nothing half written survives. An existing file at ``final`` is overwritten; an existing directory is replaced
    only if it is a previous output of the same kind.

    Parameters
    ----------
    final : str or os.PathLike
        Where the finished output must end up. Its parent directory is created if needed.
    directory_signature : str, optional
        For a directory output, the file that marks a previous output of the same kind (see
        :func:`check_output_path`); ``None`` for a file.

    Yields
    ------
    pathlib.Path
        A path in the same directory (hence the same file system) to write to.

    Raises
    ------
    bayesrb.errors.BadInputError
        If ``final`` is refused by :func:`check_output_path`.
    """
    final = check_output_path(final, directory_signature=directory_signature)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        _move_into_place(tmp, final)
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


def write_parquet(frame, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as Parquet (no index), atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
