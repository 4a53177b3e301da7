"""The model manager: registered network files with lazy loading and verified downloads.

Weights shipped with meiyan live in this folder as ``.onnx`` files, each with a model card
(``.md``) stating its data, terms, recipe and measured figures; MediaPipe's face models ship
inside the ``mediapipe`` wheel and are registered here too.
"""

from __future__ import annotations

from meiyan.models.download import download, sha256_file, verify
from meiyan.models.registry import (
    DEVICES,
    ModelSpec,
    cache_dir,
    default_device,
    fetch,
    get_spec,
    installed_path,
    model_path,
    names,
    onnx_session,
    providers,
    register,
    unavailable,
    unregister,
)

__all__ = [
    "DEVICES",
    "ModelSpec",
    "cache_dir",
    "default_device",
    "download",
    "fetch",
    "get_spec",
    "installed_path",
    "model_path",
    "names",
    "onnx_session",
    "providers",
    "register",
    "sha256_file",
    "unavailable",
    "unregister",
    "verify",
]

_MP = "mediapipe"
_MP_TERMS = "Google's training data (MediaPipe model card); weights Apache-2.0"

register(
    ModelSpec(
        name="skin-unet",
        filename="skin_unet.onnx",
        sha256="e3fd0a4d859dccf356182b205a1e17521ccedaabf1ba3cb37f31ebbecbb0704a",
        size=8_666_012,
        licence="Apache-2.0 (meiyan)",
        data_terms="LFW Part Labels: research use; CelebA-HQ: non-commercial research use "
        "only; FASSEG Multipose01: research use only",
        commercial=False,
        engine="skin/unet",
        inputs=(("image", (None, 3, None, None)),),
        outputs=(("skin", (None, 1, None, None)),),
        card="skin_unet.md",
        description="U-Net skin segmenter, width 0.25, trained on LFW Part Labels, FASSEG "
        "Multipose01 and CelebA-HQ hair masks",
    )
)
register(
    ModelSpec(
        name="abpn",
        filename="abpn.onnx",
        sha256="33759f312532ce7f16b08b7692bffbfda320690a812aba5c33682d43e5d16722",
        size=5_158_958,
        licence="Apache-2.0 (meiyan)",
        data_terms="CelebA-HQ: non-commercial research use only; FASSEG Multipose01: research "
        "use only",
        commercial=False,
        engine="retouch/abpn",
        inputs=(("image", (None, 3, None, None)), ("moles", (None, 1))),
        outputs=(("layer", (None, 3, None, None)), ("mask", (None, 1, None, None))),
        card="abpn.md",
        description="ABPN blend-layer retoucher (Lei et al. 2022), trained on synthetic defects",
    )
)
for _name, _file, _sha, _size, _engine, _desc in (
    (
        "mediapipe-face-detection-short",
        "modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        229_714,
        "face/analyze",
        "BlazeFace short-range face detector (Bazarevsky et al. 2019)",
    ),
    (
        "mediapipe-face-detection-full",
        "modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        676_746,
        "face/analyze",
        "BlazeFace full-range face detector",
    ),
    (
        "mediapipe-face-mesh",
        "modules/face_landmark/face_landmark_with_attention.tflite",
        "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4",
        2_495_106,
        "face/analyze",
        "Attention Mesh: 478 face landmarks (Grishchenko et al. 2020)",
    ),
    (
        "mediapipe-selfie-segmentation",
        "modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
        249_505,
        "face/person",
        "MediaPipe selfie segmentation: the person mask",
    ),
):
    register(
        ModelSpec(
            name=_name,
            filename=_file,
            sha256=_sha,
            size=_size,
            licence="Apache-2.0",
            data_terms=_MP_TERMS,
            commercial=True,
            engine=_engine,
            card="https://ai.google.dev/edge/mediapipe/solutions/guide",
            package=_MP,
            description=_desc,
        )
    )
