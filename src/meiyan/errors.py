"""Exceptions raised by meiyan."""

from __future__ import annotations


class MeiyanError(Exception):
    """Base class of every error meiyan raises on purpose."""


class ImageError(MeiyanError):
    """An image could not be read or written; the message names the file."""


class ModelError(MeiyanError):
    """A model is missing, corrupt or unusable."""
