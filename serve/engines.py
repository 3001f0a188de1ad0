"""Inference engines: run the model on one padded batch, return logits per head. Nothing else."""

from __future__ import annotations

import logging
import re
import warnings
from typing import Protocol

import numpy as np

from stancekit.errors import ConfigError
from stancekit.model.artifact import VerifiedArtifact

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8")
# Two padded rows of different lengths, so the traced graph keeps the attention mask for every
# input; small ids exist in any vocabulary (0 is padding here, the mask says so explicitly).
_TRACE_IDS = [[2, 5, 6, 3, 0, 0], [2, 7, 8, 9, 10, 3]]
_CHECK_IDS = [[2, 3, 0], [2, 5, 3]]
# Inputs of different lengths, two or more to a packed row: packing must reproduce their padded logits.
_PACK_CHECK_IDS = [[2, 5, 6, 7, 3], [2, 8, 3, 0, 0], [2, 9, 10, 3, 0], [2, 11, 3, 0, 0]]


def _padded(rows, torch) -> dict:
    ids = torch.tensor(rows)
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}


def _packed(inputs, width, torch) -> tuple[dict, np.ndarray]:
    from stancekit.serve.batching import pack_batch, pack_rows

    rows = pack_rows([len(x) for x in inputs], width)
    batch, order = pack_batch(inputs, None, rows, width, pad_id=0)
    return {k: torch.from_numpy(v) for k, v in batch.items()}, order


def _trace(model, example: dict, check: dict, torch):
    """TorchScript graph of `model`, or None when its outputs differ from eager on a second shape.

    The traced forward runs in C++ without the GIL, so batches on several worker threads
    and the HTTP and splitting threads stop queueing for the interpreter between ops
    (bench/throughput.py and bench/load.py measure the gain).
    """
    hf_logger = logging.getLogger("transformers.modeling_utils")  # tracing reads an unused loss property that warns
    level = hf_logger.level
    hf_logger.setLevel(logging.ERROR)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation and tracer notes; the check below is the guard
        try:
            traced = torch.jit.freeze(torch.jit.trace(model, example_kwarg_inputs=example, strict=False))
            got, want = traced(**check), model(**check)
        except Exception as err:  # noqa: BLE001 - any tracing failure falls back to eager
            logger.warning("TorchScript tracing failed (%s); running eager", err)
            return None
        finally:
            hf_logger.setLevel(level)
    if any(not torch.allclose(got[h].float(), want[h].float(), atol=1e-3) for h in want):
        logger.warning("traced model disagrees with eager on a check batch; running eager")
        return None
    return traced


def _packing_agrees(model, torch) -> bool:
    """True when packed rows give the padded rows' logits (fp32, before any cast) on a check batch."""
    from stancekit.model.heads import PackedClassifier

    padded = _padded(_PACK_CHECK_IDS, torch)
    inputs = [[t for t in row if t] for row in _PACK_CHECK_IDS]
    packed, order = _packed(inputs, max(len(x) for x in inputs) * 2, torch)
    try:
        with torch.inference_mode():
            want = model(**padded)
            got = PackedClassifier(model)(**packed)
    except Exception as err:  # noqa: BLE001 - an encoder without position_ids or 4-D masks runs padded
        logger.info("packed rows not supported by this encoder (%s); batches stay padded", err)
        return False
    ok = all(torch.allclose(got[h][torch.from_numpy(order.argsort())], want[h], atol=1e-4, rtol=1e-3) for h in want)
    if not ok:
        logger.info("packed rows score differently from padded rows with this encoder; batches stay padded")
    return ok


class Engine(Protocol):
    """A model call: padded int64 arrays in, float32 logits per head out.

    Engines whose `packs` is true also take packed rows (`stancekit.serve.batching.pack_batch`)
    and return one row of logits per packed input.
    """

    packs: bool

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class TorchEngine:
    """PyTorch fp32 (default), bf16 weights, or dynamic int8 quantisation of linear layers; traced unless `trace=False`."""

    def __init__(
        self, artifact: VerifiedArtifact, mode: str = "fp32", threads: int | None = None, trace: bool = True,
        packing: bool = True,
    ):
        import torch

        from stancekit.model.artifact import load_torch_model

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        model = load_torch_model(artifact)
        self.packs = packing and _packing_agrees(model, torch)
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
        model = model.eval()
        traced = _trace(model, _padded(_TRACE_IDS, torch), _padded(_CHECK_IDS, torch), torch) if trace else None
        self.model = traced or model
        self.packed = None
        if self.packs:
            from stancekit.model.heads import PackedClassifier

            packed = PackedClassifier(model).eval()
            example = _packed([[2, 5, 6, 3], [2, 7, 3], [2, 8, 9, 10, 3]], 8, torch)[0]
            check = _packed([[2, 3], [2, 5, 3], [2, 6, 7, 8, 9, 3], [2, 4, 3]], 6, torch)[0]
            self.packed = (_trace(packed, example, check, torch) if trace else None) or packed

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        inputs = {k: torch.from_numpy(v) for k, v in batch.items()}
        model = self.packed if "segment_ids" in inputs else self.model
        with torch.inference_mode():
            logits = model(**inputs)
        return {h: v.float().numpy() for h, v in logits.items()}


def make_engine(
    artifact: VerifiedArtifact, backend: str = "torch", threads: int | None = None, packing: bool = True
) -> Engine:
    """Engine for `backend` (one of BACKENDS); `packing` lets torch engines take packed rows."""
    modes = {"torch": "fp32", "torch-bf16": "bf16", "torch-int8": "int8"}
    if backend in modes:
        return TorchEngine(artifact, modes[backend], threads, packing=packing)
    if backend in ("onnx", "onnx-int8"):
        from stancekit.serve.onnx_engine import OnnxEngine

        return OnnxEngine(artifact, quantized=backend == "onnx-int8", threads=threads)
    raise ConfigError(f"serve.backend {backend!r} is not one of {', '.join(BACKENDS)}")
