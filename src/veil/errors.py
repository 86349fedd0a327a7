"""The one error type veil shows a user: a clear, one-line message."""


class VeilError(Exception):
    """A problem with an input, an output or a setting, worded for the user."""


class MediaError(VeilError):
    """An input that cannot be read as an image or video (corrupt, truncated, wrong type)."""
