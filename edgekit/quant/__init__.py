"""Quantization beyond plain int8: per-layer sensitivity and mixed precision (`sensitivity`),
quantization-aware fine-tuning (`qat`), fp16 ONNX (`fp16`); `ptq` holds the ONNX Runtime Q/DQ path."""
