"""Logging set-up for workflow jobs."""

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bayesrb.errors import BadInputError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_to(path: str | None) -> Iterator[logging.Logger]:
    """Send the ``bayesrb`` loggers (and warnings) to ``path`` for the duration of a job.

    An exception raised inside is written to the log before it propagates, so a failed job's log says why: one
    ERROR line (for a :class:`~bayesrb.errors.BadInputError` the file and what is wrong, for any other exception
    its type and message), then the traceback. A step that succeeds ends its log with its wall time (``done in
    1.23 s``), so the steps of a job that runs several (one log each) are timed one by one.

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
    start = time.perf_counter()
    try:
        yield logger
        logger.info("done in %.2f s", time.perf_counter() - start)
    except Exception as error:
        message = str(error) if isinstance(error, BadInputError) else f"{type(error).__name__}: {error}"
        logger.error("%s", message, exc_info=True)
        raise
    finally:
        logger.removeHandler(handler)
        logging.getLogger("py.warnings").removeHandler(handler)
        handler.close()
