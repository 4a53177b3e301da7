"""Training of meiyan's networks (needs the ``train`` extra: ``pip install meiyan[train]``).

:mod:`meiyan.train.trainer` is the general trainer; each network is a task of
:mod:`meiyan.train.tasks` (the skin U-Net: :mod:`meiyan.train.tasks.skin_unet`).
:mod:`meiyan.train.datasets` and :mod:`meiyan.train.augment` need only NumPy, OpenCV and Pillow;
the trainer and the tasks import torch.
"""
