"""Inference engines: run the model on one padded batch, return logits per head. Nothing else."""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np

from stancekit.errors import ConfigError
from stancekit.model.artifact import VerifiedArtifact

BACKENDS = ("torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8")


class Engine(Protocol):
    """A model call: padded int64 arrays in, float32 logits per head out."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class TorchEngine:
    """PyTorch fp32 (default), bf16 weights, or dynamic int8 quantisation of linear layers."""

    def __init__(self, artifact: VerifiedArtifact, mode: str = "fp32", threads: int | None = None):
        import torch

        from stancekit.model.artifact import load_torch_model

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        model = load_torch_model(artifact)
        if mode == "int8":
            # Dynamic int8 for every linear layer except the FFN output projections (`layer.N.output.dense`),
            # whose activation outliers make int8 distort the encoder; the rest keeps most of the speed-up.
            targets = {
                name for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and not re.search(r"layer\.\d+\.output\.dense$", name)
            }
            model = torch.ao.quantization.quantize_dynamic(model, targets, dtype=torch.qint8)
        elif mode == "bf16":
            # bf16 weights rather than autocast: no per-op casts, about 1.4x faster here, and the
            # labels still agree with fp32 on >99.7 % of dev sentences (stancekit bench parity).
            model = model.to(torch.bfloat16)
        self.model = model.eval()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        inputs = {k: torch.from_numpy(v) for k, v in batch.items()}
        with torch.inference_mode():
            logits = self.model(**inputs)
        return {h: v.float().numpy() for h, v in logits.items()}


def make_engine(artifact: VerifiedArtifact, backend: str = "torch", threads: int | None = None) -> Engine:
    """Engine for `backend` (one of BACKENDS)."""
    if backend == "torch":
        return TorchEngine(artifact, "fp32", threads)
    if backend == "torch-bf16":
        return TorchEngine(artifact, "bf16", threads)
    if backend == "torch-int8":
        return TorchEngine(artifact, "int8", threads)
    if backend in ("onnx", "onnx-int8"):
        from stancekit.serve.onnx_engine import OnnxEngine

        return OnnxEngine(artifact, quantized=backend == "onnx-int8", threads=threads)
    raise ConfigError(f"serve.backend {backend!r} is not one of {', '.join(BACKENDS)}")
