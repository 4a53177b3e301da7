"""Learned makeup transfer after PSGAN (W. Jiang et al., "PSGAN: Pose and Expression Robust
Spatial-Aware GAN for Customizable Makeup Transfer", CVPR 2020).

- :mod:`.landmarks68`: MediaPipe's 478-point mesh on the 68-point iBUG scheme PSGAN uses.
- :mod:`.network`, :mod:`.discriminators`, :mod:`.losses`: the generator in the official
  code's layout, the discriminators and the training losses (torch).
- :mod:`.convert`: an official ``G.pth`` (or a meiyan checkpoint) to ONNX (torch).
- :mod:`.engine`: onnxruntime inference on the faces of a photo (no torch).
"""
