"""User-facing errors: a problem the user can fix, reported without a traceback."""


class UserError(Exception):
    """Bad input (config, data, checkpoint, path): the message names the problem and the fix.

    The command line prints it as one paragraph and exits non-zero; set ``GANRUN_DEBUG=1``
    to see the traceback as well.
    """
