"""``quantize="int8"``: onnxruntime's dynamic quantization of the linear layers."""

from __future__ import annotations


def quantize_int8(source: str, target: str) -> None:
    """Write ``source``'s graph to ``target`` with int8 weights in its MatMul and Gemm nodes.

    Dynamic quantization: weights are stored as signed int8 with one scale per output
    channel, activations are quantized on the fly, batch by batch; convolutions stay in
    float32 (onnxruntime's dynamic ConvInteger is slower than its float convolutions on
    most CPUs). Per channel rather than per tensor: on all-MiniLM-L6-v2 it costs no
    measurable speed and moves predictions about half as far from the fp32 model's
    (benchmarks/onnx_predict.py).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                     per_channel=True)
