"""Faces: detection with 478 landmarks at any image size, head pose, named regions, persons."""

from meiyan.face.detect import (
    DEFAULT_MIN_FACE,
    SEARCH_FLOOR,
    Detection,
    FaceDetector,
    analyze,
    default_detector,
)
from meiyan.face.person import PersonSegmenter, person_mask
from meiyan.face.pose import head_pose
from meiyan.face.record import Face, Pose
from meiyan.face.regions import FEATURES, REGIONS, region_mask, region_polygons

__all__ = [
    "DEFAULT_MIN_FACE",
    "FEATURES",
    "REGIONS",
    "SEARCH_FLOOR",
    "Detection",
    "Face",
    "FaceDetector",
    "PersonSegmenter",
    "Pose",
    "analyze",
    "default_detector",
    "head_pose",
    "person_mask",
    "region_mask",
    "region_polygons",
]
