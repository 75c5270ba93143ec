"""Reading the project's text inputs (manifests, label CSVs) with one clear error for a file that is not text."""

import os
from pathlib import Path

from bayesrb.errors import BadInputError


def read_text(path: str | os.PathLike, what: str) -> str:
    """Return the whole of a UTF-8 text file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the file is, for the messages (e.g. ``"FITS manifest"``).

    Returns
    -------
    str
        Its text, with universal newlines (as :func:`open` in text mode gives it).

    Raises
    ------
    bayesrb.errors.BadInputError
        Naming the file, if it does not exist (or is not a regular file) or is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, f"{what} does not exist (or is not a regular file)")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadInputError(path, f"{what} is not a text file (byte 0x{data[error.start]:02x} at offset "
                                  f"{error.start} is not UTF-8)") from None
    if "\0" in text:
        raise BadInputError(path, f"{what} is not a text file (it holds NUL bytes)")
    return text.replace("\r\n", "\n").replace("\r", "\n")
