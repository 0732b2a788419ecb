"""The one exception type the kit raises for problems a user can fix."""


class KitError(Exception):
    """An expected failure: the message says what is wrong and what to do.

    The CLI turns it into a clean message and a non-zero exit, never a traceback.
    """
