"""User errors: bad input that the command line reports as one line, never as a traceback.

Every error that a user can cause (a malformed file, an unknown language, a bad gin value, a
corrupt checkpoint, a run directory that does not match) is a :class:`UserError` whose message
names the culprit (file and line, flag, field). The command line prints ``error: <message>`` and
exits with status 2. Anything else is a bug and keeps its traceback.

Each subclass also derives from the built-in type that callers would expect (``ValueError``,
``FileNotFoundError``), so library code can catch either.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of every error caused by the user's input; the message is one line."""


class ConfigError(UserError, ValueError):
    """A setting that cannot be used: a gin value, a flag, a model configuration."""


class DataError(UserError, ValueError):
    """A data file or record that cannot be read; the message names the file and record."""


class RunDirError(UserError, ValueError):
    """A run directory that is missing, incomplete, or does not match the run being started."""


class CheckpointError(UserError, RuntimeError):
    """No usable checkpoint where one was required."""


class MissingFileError(UserError, FileNotFoundError):
    """An input file or folder that does not exist; the message names it."""


class JobFailedError(UserError, RuntimeError):
    """A job that ran but produced nothing usable (e.g. every judge request failed)."""


class PartialResultsError(JobFailedError):
    """Stages that finished with some items failed; ``lines`` names each (run, stage, count)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class BusyError(UserError, RuntimeError):
    """Another process holds the lock of an output directory or cache."""
