"""The one exception type that reaches a user as a single line."""


class UserError(Exception):
    """Bad input or environment the user can fix.

    The message is one line that names the file, task or setting at fault and what to do about it.
    The command line prints it as ``multilabelfy: error: <message>`` and exits with status 2.
    """
