"""Shared pieces of the cnn-edge training scripts: architectures, data sets, ONNX export."""
