"""Errors the CLI turns into one-line messages and exit codes."""


class ImgfixError(Exception):
    """A runtime failure: the CLI prints the message and exits with 1."""

    exit_code = 1


class InputError(ImgfixError):
    """Bad input from the user (missing file, unreadable image, unknown model): exit code 2."""

    exit_code = 2
