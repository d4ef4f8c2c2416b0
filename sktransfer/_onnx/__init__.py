"""ONNX export of fitted models, and a predictor that runs them without torch.

:mod:`.export` (torch) writes a directory holding ``model.onnx`` and
``sktransfer_onnx.json``; :mod:`.predictor` reads it back with onnxruntime, numpy,
Pillow and ``tokenizers`` only. This file imports nothing, so that importing the
predictor never pulls in torch.
"""
