"""Face editing after SC-FEGAN (Jo and Park, ICCV 2019): erase, sketch, colour, fill.

:func:`edit` runs on onnxruntime (no torch); :mod:`meiyan.edit.network`, ``losses``, ``export``
and ``convert`` are for training and conversion and need torch.
"""

from meiyan.edit.api import EditError, EditJob, Window, edit, face_window, plan_windows

__all__ = ["EditError", "EditJob", "Window", "edit", "face_window", "plan_windows"]
