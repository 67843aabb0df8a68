"""The one exception type for a user's mistake.

Library code raises :class:`UserError` (or a subclass) when the input is wrong — an unknown
name, a value out of range, a missing file — with a message that says what was wrong and what
would be right. The CLI prints it as one line ``optimlab: error: …`` and exits with status 2;
anything else is a bug (exit 1).
"""


class UserError(Exception):
    """A mistake in what the user asked for; the message names it and the valid choices."""
