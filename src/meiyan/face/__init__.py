"""Faces: detection with 478 landmarks at any image size, head pose, named regions, persons."""

from meiyan.face.detect import Detection, FaceDetector, default_detector, detect_faces
from meiyan.face.person import PersonSegmenter, person_mask
from meiyan.face.pose import head_pose
from meiyan.face.record import Face, Pose
from meiyan.face.regions import FEATURES, REGIONS, region_mask, region_polygons

__all__ = [
    "FEATURES",
    "REGIONS",
    "Detection",
    "Face",
    "FaceDetector",
    "PersonSegmenter",
    "Pose",
    "default_detector",
    "detect_faces",
    "head_pose",
    "person_mask",
    "region_mask",
    "region_polygons",
]
