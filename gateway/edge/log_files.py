"""Log files of bare lines (access, starting points, audit), rotating, or none for "-"."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path


def open_log_file(name: str, path: str, max_mb: int, backups: int) -> logging.Logger:
    """A logger ``name`` that writes bare lines to ``path`` (rotating), or nowhere for '-'."""
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    if path == "-":
        logger.addHandler(logging.NullHandler())
        logger.disabled = True  # callers check isEnabledFor and skip building the line
        return logger
    logger.disabled = False
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=max_mb * 2**20, backupCount=backups)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger
