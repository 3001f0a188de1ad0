"""ONNX Runtime engine: exported once from the artifact's torch model, then served without torch.

`export_onnx` (needs torch) writes ``<artifact>/onnx/model.onnx`` and, quantised,
``model.int8.onnx`` with their own small manifest (sha256 of each ONNX file and of the
source weights), so a stale or edited export is refused. Serving reads only
onnxruntime + numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from stancekit.errors import ArtifactError
from stancekit.model.artifact import WEIGHTS, VerifiedArtifact, sha256_file

ONNX_DIR = "onnx"
ONNX_MANIFEST = "onnx_manifest.json"
FP32 = "model.onnx"
INT8 = "model.int8.onnx"
FFN_OUTPUT = re.compile(r"layer\.\d+/output/dense/")


def export_onnx(artifact: VerifiedArtifact, opset: int = 17, quantize: bool = True) -> Path:
    """Export the artifact's model to ONNX (fp32, and dynamic int8 if `quantize`); returns the onnx dir."""
    import torch

    from stancekit.model.artifact import load_torch_model

    model = load_torch_model(artifact)
    heads = list(artifact.manifest.heads)
    out = artifact.path / ONNX_DIR
    out.mkdir(exist_ok=True)
    ids = torch.ones(2, 16, dtype=torch.long)
    inputs = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class _Tuple(torch.nn.Module):
        """ONNX outputs are positional: one logits tensor per head, in manifest order."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            logits = self.inner(input_ids, attention_mask, token_type_ids)
            return tuple(logits[h] for h in heads)

    torch.onnx.export(
        _Tuple(model).eval(), inputs, str(out / FP32), input_names=names, output_names=heads,
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in names} | {h: {0: "batch"} for h in heads},
        opset_version=opset, dynamo=False,
    )
    files = [FP32]
    if quantize:
        # Per-channel weights, and the FFN output projections kept in fp32: plain int8 visibly distorts
        # the encoder's outputs (its activations there have outliers), these two recover most of it.
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph = onnx.load(str(out / FP32)).graph
        keep_fp32 = [n.name for n in graph.node if n.op_type == "MatMul" and FFN_OUTPUT.search(n.name)]
        quantize_dynamic(
            str(out / FP32), str(out / INT8), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep_fp32,
        )
        files.append(INT8)
    manifest = {
        "heads": heads,
        "source_weights_sha256": artifact.manifest.files[WEIGHTS],
        "files": {f: sha256_file(out / f) for f in files},
    }
    (out / ONNX_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


class OnnxEngine:
    """ONNX Runtime session over an exported artifact model (fp32 or int8); padded batches only."""

    packs = False

    def __init__(self, artifact: VerifiedArtifact, quantized: bool = False, threads: int | None = None):
        import onnxruntime as ort

        name = INT8 if quantized else FP32
        directory = artifact.path / ONNX_DIR
        manifest_path = directory / ONNX_MANIFEST
        if not manifest_path.is_file():
            raise ArtifactError(
                f"{artifact.path}: no ONNX export; run `stancekit export-onnx --artifact {artifact.path}` first"
            )
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("source_weights_sha256") != artifact.manifest.files[WEIGHTS]:
            raise ArtifactError(f"{directory}: ONNX export is stale (made from other weights); export it again")
        if name not in manifest.get("files", {}):
            raise ArtifactError(f"{directory}: {name} was not exported; export with quantisation")
        if sha256_file(directory / name) != manifest["files"][name]:
            raise ArtifactError(f"{directory}/{name}: checksum mismatch; export it again")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(directory / name), opts, providers=["CPUExecutionProvider"])
        self.heads = manifest["heads"]
        self.input_names = {i.name for i in self.session.get_inputs()}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {k: v for k, v in batch.items() if k in self.input_names}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(batch["input_ids"])
        outputs = self.session.run(None, feed)
        return {h: np.asarray(o, dtype=np.float32) for h, o in zip(self.heads, outputs)}
