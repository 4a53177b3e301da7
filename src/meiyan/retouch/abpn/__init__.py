"""Learned retouching after ABPN (Lei et al., CVPR 2022): the network (torch, for training and
export: :mod:`meiyan.retouch.abpn.network`) and the ``abpn`` engine of the ``retouch`` slot
(onnxruntime only: :mod:`meiyan.retouch.abpn.engine`)."""
