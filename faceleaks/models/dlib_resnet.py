"""dlib's 128-D face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The 29-convolution ResNet of dlib's ``examples/dnn_face_recognition_ex.cpp`` (``anet_type``), with
weights read straight from dlib's ``.dat`` file; it matches ``dlib.face_recognition_model_v1`` to
float32 round-off (max abs difference ~3e-7 per coordinate). The public names live here; the network
is in :mod:`faceleaks.models.dlib_net` and the ``.dat`` reader in :mod:`faceleaks.models.dlib_file`.
"""

from __future__ import annotations

from faceleaks.models.dlib_file import load_dlib_resnet
from faceleaks.models.dlib_net import CHIP_SIZE, DLIB_MEAN_RGB, DLIB_UNITS, DlibResNet, preprocess_dlib

__all__ = ["DlibResNet", "load_dlib_resnet", "preprocess_dlib", "DLIB_MEAN_RGB", "DLIB_UNITS", "CHIP_SIZE"]
