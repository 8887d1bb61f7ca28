"""Errors the CLI turns into one-line messages and exit codes."""


class ImgfixError(Exception):
    """A runtime failure: the CLI prints the message and exits with 1."""

    exit_code = 1


class InputError(ImgfixError):
    """Bad input from the user (missing file, unreadable image, unknown model): exit code 2."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """An exception's first line, at most 160 characters: the reason in a one-line error."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
