"""Exit codes of the command lines: 0 on success, 1 with a one-line message on stderr for a user error.

A user error is a missing file, a bad value or an unusable checkpoint: the message says what to change, and a
traceback would only hide it. Set ``IVNEXT_TRACEBACK=1`` to get the traceback anyway. Argument errors leave
through argparse (exit code 2, usage on stderr); anything else is a bug and keeps its traceback.
"""
import os
import pickle
import sys
from typing import Callable, Optional

# Exceptions whose message tells a user what to fix (the library raises these for bad inputs).
USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError, KeyError,
               ImportError, pickle.UnpicklingError)
SUCCESS = 0
FAILURE = 1


def error_message(err: BaseException) -> str:
    """One line: the exception's message (a KeyError's without the quotes its ``str`` adds)."""
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else str(err)
    return ' '.join(str(text).split()) or type(err).__name__


def run_as_command(func: Callable[[], Optional[int]], prog: str) -> int:
    """Call ``func`` and turn its outcome into an exit code.

    Args:
        func: The command's work; returns None / 0 on success or a non-zero exit code.
        prog: Name printed in front of an error message (e.g. ``ivnext-extract-features``).

    Returns:
        int: ``func``'s code (0 for None), or 1 after printing ``prog: error: message`` for a user error.
    """
    try:
        code = func()
    except USER_ERRORS as err:
        if os.environ.get('IVNEXT_TRACEBACK', '') not in ('', '0'):
            raise
        print(f'{prog}: error: {error_message(err)}', file=sys.stderr)
        return FAILURE
    return SUCCESS if code is None else int(code)
