"""Exceptions raised by meiyan."""

from __future__ import annotations


class MeiyanError(Exception):
    """Base class of every error meiyan raises on purpose."""


class ImageError(MeiyanError):
    """An image could not be read or written; the message names the file."""


class ImageTooLargeError(ImageError):
    """An image has more pixels than the limit it was read under (found from its header,
    before decoding)."""


class ModelError(MeiyanError):
    """A model is missing, corrupt or unusable."""


class NoFaceError(MeiyanError):
    """No face was found where a job needs one (a makeup photo, or a reference)."""


class MeiyanWarning(UserWarning):
    """Base class of meiyan's warnings."""


class NoFaceWarning(MeiyanWarning):
    """A photo had no face: a job that improves photos returned it unchanged, or a skin mask
    came from the colour rule instead of a face-based segmenter."""


class RetouchWarning(MeiyanWarning):
    """Something about a photo limited its retouching (a small face)."""
