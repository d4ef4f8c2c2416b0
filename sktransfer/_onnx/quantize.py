"""``quantize="int8"``: onnxruntime's dynamic quantization of the linear layers."""

from __future__ import annotations


def quantize_int8(source: str, target: str) -> None:
    """Write ``source``'s graph to ``target`` with int8 weights in its MatMul and Gemm nodes.

    Dynamic quantization: weights are stored as signed int8 (per tensor), activations
    are quantized on the fly, batch by batch; convolutions stay in float32 (onnxruntime's
    dynamic ConvInteger is slower than its float convolutions on most CPUs).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
