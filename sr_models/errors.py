"""Errors raised by sr_models; each message names the file and the fix."""


class ImageError(ValueError):
    """An image file that cannot be used as given (unreadable, corrupt, grey, RGBA, wrong size)."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, corrupt or of another architecture."""
