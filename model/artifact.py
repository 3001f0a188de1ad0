"""Model artifact: safetensors weights, tokenizer, manifest (labels, config, sha256 of every file).

Layout of an artifact directory::

    manifest.json        format version, base model, heads and label order, temperatures,
                         max length, training config, sha256 of every other file
    model.safetensors    encoder + heads; its metadata repeats the heads and labels
    encoder_config.json  encoder architecture (weights come from model.safetensors)
    tokenizer/           tokenizer files (tokenizer.json is all serving needs)
    metrics.json         dev/test metrics and baselines
    README.md            model card
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from stancekit.errors import ArtifactError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
ENCODER_CONFIG = "encoder_config.json"
TOKENIZER_DIR = "tokenizer"
METRICS = "metrics.json"
CARD = "README.md"


class HeadSpec(BaseModel):
    """One head as stored in the manifest: labels in output order, calibration and abstention."""

    labels: list[str]
    field: str
    temperature: float = 1.0
    abstain_threshold: float | None = None


class Manifest(BaseModel):
    """Everything needed to load and trust an artifact."""

    format_version: int = FORMAT_VERSION
    stancekit_version: str
    name: str
    base_model: str
    max_length: int
    pooling: str
    text_pair: bool = False
    heads: dict[str, HeadSpec]
    profile: dict[str, Any] = Field(default_factory=dict, description="lean head/labels, evidence, bootstrap")
    training_config: dict[str, Any]
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")

    def head_labels(self) -> dict[str, list[str]]:
        """Labels per head, in output order."""
        return {name: spec.labels for name, spec in self.heads.items()}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: Path, manifest: Manifest) -> Manifest:
    """Checksum every file in `directory` (except the manifest) and write manifest.json."""
    files = {
        str(p.relative_to(directory)): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = manifest.model_copy(update={"files": files})
    (directory / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def weights_metadata(manifest: Manifest) -> dict[str, str]:
    """safetensors metadata: the heads' labels, so an edited manifest label list is detectable."""
    return {"stancekit_heads": json.dumps(manifest.head_labels(), sort_keys=True), "format": "pt"}


def read_manifest(directory: str | Path) -> Manifest:
    """Parse manifest.json of an artifact directory."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: not a stancekit artifact (no {MANIFEST}); train one with `stancekit train`")
    try:
        manifest = Manifest.model_validate_json(path.read_text())
    except ValidationError as err:
        raise ArtifactError(f"{path}: invalid manifest: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}") from None
    if manifest.format_version != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format_version {manifest.format_version} is not supported (this stancekit reads {FORMAT_VERSION})"
        )
    return manifest


@dataclass(frozen=True)
class VerifiedArtifact:
    """An artifact directory whose checksums and label order have been checked."""

    path: Path
    manifest: Manifest


def verify_artifact(directory: str | Path, expected_heads: dict[str, list[str]] | None = None) -> VerifiedArtifact:
    """Check every file's sha256 and that manifest labels match the weights (and `expected_heads`)."""
    from safetensors import safe_open

    directory = Path(directory)
    manifest = read_manifest(directory)
    for rel, digest in manifest.files.items():
        p = directory / rel
        if not p.is_file():
            raise ArtifactError(f"{directory}: file {rel} listed in the manifest is missing")
        actual = sha256_file(p)
        if actual != digest:
            raise ArtifactError(
                f"{directory}: checksum mismatch for {rel} (manifest {digest[:12]}…, file {actual[:12]}…): "
                "the file was modified or corrupted; retrain or restore the artifact"
            )
    for required in (WEIGHTS, ENCODER_CONFIG, f"{TOKENIZER_DIR}/tokenizer.json"):
        if required not in manifest.files:
            raise ArtifactError(f"{directory}: manifest does not list required file {required}")
    try:
        with safe_open(str(directory / WEIGHTS), framework="np") as f:
            stored = json.loads((f.metadata() or {}).get("stancekit_heads", "null"))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise ArtifactError(f"{directory}/{WEIGHTS}: unreadable safetensors file ({err})") from None
    if stored != manifest.head_labels():
        raise ArtifactError(
            f"{directory}: label order in {MANIFEST} {manifest.head_labels()} does not match the weights "
            f"{stored}; the manifest was edited, restore it"
        )
    if expected_heads is not None and expected_heads != manifest.head_labels():
        raise ArtifactError(
            f"{directory}: heads/labels {manifest.head_labels()} differ from the expected {expected_heads}"
        )
    return VerifiedArtifact(directory, manifest)


def save_artifact(
    out_dir: str | Path,
    model: Any,
    tokenizer: Any,
    manifest: Manifest,
    metrics: dict[str, Any],
    card: str,
) -> Manifest:
    """Write a complete artifact atomically (temp dir, then rename) and return its manifest."""
    import shutil

    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS), metadata=weights_metadata(manifest))
    (tmp / ENCODER_CONFIG).write_text(model.encoder.config.to_json_string(use_diff=False))
    tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
    (tmp / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (tmp / CARD).write_text(card)
    manifest = write_manifest(tmp, manifest)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return manifest


def load_torch_model(artifact: VerifiedArtifact) -> Any:
    """The artifact's MultiHeadClassifier in eval mode, weights from safetensors (strict)."""
    from safetensors.torch import load_file

    from stancekit.model.encoder import encoder_config_from_dict, encoder_from_config
    from stancekit.model.heads import MultiHeadClassifier

    m = artifact.manifest
    config = encoder_config_from_dict(json.loads((artifact.path / ENCODER_CONFIG).read_text()))
    model = MultiHeadClassifier(
        encoder_from_config(config), {h: len(s.labels) for h, s in m.heads.items()}, pooling=m.pooling, dropout=0.0
    )
    state = load_file(str(artifact.path / WEIGHTS))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"{artifact.path}/{WEIGHTS}: weights do not fit the architecture "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    return model.eval()
