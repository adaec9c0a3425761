"""User-facing errors: a problem the user can fix, reported without a traceback."""


class UserError(Exception):
    """Bad input (config, data, checkpoint, path): the message names the problem and the fix.

    The command line prints it as one paragraph and exits non-zero; set ``GANRUN_DEBUG=1``
    to see the traceback as well.
    """


def user_error_behind(exc: BaseException | None) -> UserError | None:
    """The UserError behind an exception, also when Hydra's instantiate wrapped it."""
    while exc is not None and not isinstance(exc, UserError):
        exc = exc.__cause__ or exc.__context__
    return exc


def one_paragraph(err: UserError) -> str:
    # An error raised in a DataLoader worker comes back with the worker's traceback inside
    # its message; the user needs only the last line.
    text = str(err)
    return text.rsplit("UserError: ", 1)[-1].strip() if "Traceback" in text else text
