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

    A :class:`~bayesrb.errors.BadInputError` raised inside is logged as one ERROR line (the file and
    what is wrong) and then re-raised, so the job fails with that message.

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
    except BadInputError as error:
        logger.error("%s", error)
        raise
    finally:
        logger.removeHandler(handler)
        logging.getLogger("py.warnings").removeHandler(handler)
        handler.close()
