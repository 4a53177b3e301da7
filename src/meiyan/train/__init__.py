"""Training of meiyan's networks (needs the ``train`` extra: ``pip install meiyan[train]``).

:mod:`meiyan.train.datasets` and :mod:`meiyan.train.augment` need only NumPy and OpenCV; the
training loops import torch.
"""
