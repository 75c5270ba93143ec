"""Logging set-up for workflow jobs."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bayesrb.errors import BadInputError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_to(path: str | None) -> Iterator[logging.Logger]:
    """Send the ``bayesrb`` loggers (and warnings) to ``path`` for the duration of a job.

    An exception raised inside is written to the log before it propagates, so a failed job's log says why: one
    ERROR line (for a :class:`~bayesrb.errors.BadInputError` the file and what is wrong, for any other exception
    its type and message), then the traceback.

    Parameters
    ----------
    path : str or None
        The job's log file; ``None`` logs to standard error.
    """
    handler = logging.FileHandler(path, mode="w") if path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger("bayesrb")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(handler)
    try:
        yield logger
    except Exception as error:
        message = str(error) if isinstance(error, BadInputError) else f"{type(error).__name__}: {error}"
        logger.error("%s", message, exc_info=True)
        raise
    finally:
        logger.removeHandler(handler)
        logging.getLogger("py.warnings").removeHandler(handler)
        handler.close()
