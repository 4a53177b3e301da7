"""Model files: a registry with lazy loading and verified downloads.

Weights shipped with meiyan live in this folder as ``.onnx`` files, each with a model card
(``.md``) stating its data, terms, recipe and measured figures.
"""

from __future__ import annotations

from meiyan.models.download import download, sha256_file, verify
from meiyan.models.registry import (
    ModelSpec,
    cache_dir,
    get_spec,
    model_path,
    names,
    onnx_session,
    register,
)

__all__ = [
    "ModelSpec",
    "cache_dir",
    "download",
    "get_spec",
    "model_path",
    "names",
    "onnx_session",
    "register",
    "sha256_file",
    "verify",
]

register(
    ModelSpec(
        name="skin-unet",
        filename="skin_unet.onnx",
        sha256="0f2d5fea41686400c3c8b72c8d00406fa7ed52af4e49931b9d75f219ecb54b9a",
        card="skin_unet.md",
        description="U-Net skin segmenter, width 0.25, trained on FASSEG Multipose01",
    )
)
