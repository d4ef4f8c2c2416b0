"""The model card (``README.md``) that ``save_pretrained`` writes next to the model files.

It is a Hugging Face model card made with ``huggingface_hub``'s ``ModelCard`` and
``ModelCardData``: YAML front matter the Hub indexes (``library_name``, ``base_model``,
``tags``, ``pipeline_tag``, ``license``, and the scores as ``model-index``), and a body
that says what the model predicts, how to load it and how it was trained.

Loading never reads the card for the model (``config.json`` and ``model.safetensors``
are the model); it only keeps its text, so that re-saving the same, unchanged model keeps
a card the user edited (``card="auto"``). Every number in the card is one the estimator
recorded (its validation history) or one the caller passed as ``metrics``.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from sktransfer._spec.registry import get_spec

CARD = "README.md"
CARD_CHOICES = ("auto", "new")
#: Where a loaded model keeps its card: ``(config checksum, card text)``.
LOADED_CARD = "_sktransfer_card"

# pipeline_tag by (estimator kind, modality): only where one fits; fused models have none.
PIPELINE_TAGS = {
    ("classifier", "text"): "text-classification",
    ("classifier", "image"): "image-classification",
    ("classifier", "tabular"): "tabular-classification",
    ("regressor", "tabular"): "tabular-regression",
    ("embedder", "text"): "feature-extraction",
    ("embedder", "image"): "image-feature-extraction",
}
KINDS = {"TransferClassifier": "classifier", "TransferRegressor": "regressor", "TransferEmbedder": "embedder"}
INPUTS = {
    "text": "a list (or 1-D array) of strings",
    "image": "image file paths, PIL images, or an array of images (N, H, W, C)",
    "tabular": "a 2-D array or DataFrame of numbers",
}
# The parameters the card lists: how the model was trained.
TRAINING_PARAMS = ("strategy", "max_epochs", "head_epochs", "wise_alpha", "lr", "batch_size", "optimizer",
                   "weight_decay", "validation_fraction", "patience", "augment", "lora_rank", "layers", "pooling",
                   "long_text", "image_size", "precision", "fusion", "random_state")

TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

## What it predicts

{{ predicts }}

## Input

{{ inputs }}

## How to use it

With sktransfer (`pip install sktransfer`; the backbone's plugin must be installed too):

```python
import sktransfer

model = sktransfer.load({{ location }})  # or the path of a local copy of this directory
{{ usage }}
```

Without torch, through ONNX Runtime (`pip install "sktransfer[onnx]"`):

```python
import sktransfer

sktransfer.export_onnx({{ location }}, "model-onnx")  # once, where torch is installed
predictor = sktransfer.load_onnx("model-onnx")
{{ usage | replace("model.", "predictor.") }}
```

Loading reads `config.json` and `model.safetensors` only: it never unpickles, and it refuses files that
don't match their checksums.

## Training

| parameter | value |
|---|---|
{% for name, value in params %}| `{{ name }}` | `{{ value }}` |
{% endfor %}
{{ scores }}
"""


def _modalities(config: dict) -> list[str]:
    branches = config.get("branches") or [config]
    return [branch["backbone"]["modality"] for branch in branches]


def _backbones(config: dict) -> list[dict]:
    return [branch["backbone"] for branch in (config.get("branches") or [config])]


def _weights(record: dict):
    """The registry's ``Weights`` of a saved backbone (hub id, license), or None."""
    try:
        return get_spec(record["name"]).weights
    except ValueError:  # a plugin that is not installed here: the card says less
        return None


def _describe_backbone(record: dict, weights, params: dict) -> str:
    text = f"`{record['name']}`"
    if weights is None or not params.get("pretrained", True):
        return text + " (trained from scratch)"
    if weights.hub_id:
        return text + f" ([{weights.hub_id}](https://huggingface.co/{weights.hub_id}))"
    return text + f" (pretrained weights: {weights.source})"


def _number(value) -> float | None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value)):
        return float(value)
    return None


def check_metrics(metrics) -> dict[str, float]:
    """``metrics`` as ``{name: float}``, or a ValueError/TypeError saying what is wrong."""
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict of metric name -> number, e.g. {{'accuracy': 0.91}}; got "
                        f"{type(metrics).__name__}.")
    checked = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"metrics' names must be non-empty strings; got {name!r}.")
        if _number(value) is None:
            raise ValueError(f"metrics[{name!r}] must be a finite number (the score you measured); got {value!r}.")
        checked[name] = float(value)
    return checked


def check_card(card) -> None:
    from huggingface_hub import ModelCard

    if not (card in CARD_CHOICES or isinstance(card, ModelCard)):
        raise ValueError(f"card must be 'auto', 'new' or a huggingface_hub.ModelCard; got {card!r}.")


def validation_scores(estimator) -> dict[str, float]:
    """The last epoch's validation scores in the estimator's history (``valid_loss``,
    ``valid_acc``), as fit recorded them; empty without a validation split."""
    history = getattr(getattr(estimator, "net_", None), "history", None)
    if not history:
        return {}
    last = history[-1]
    return {key: float(last[key]) for key in ("valid_loss", "valid_acc") if _number(last.get(key)) is not None}


def _eval_results(task: str, metrics: dict, dataset: str, validation: dict):
    from huggingface_hub import EvalResult

    def result(name, value, data_name):
        return EvalResult(task_type=task, dataset_type=data_name, dataset_name=data_name, metric_type=name,
                          metric_value=value)

    results = [result(name, value, dataset) for name, value in metrics.items()]
    results += [result(name, value, "validation split") for name, value in validation.items()]
    return results or None


def _predicts(estimator, kind: str) -> str:
    if kind == "classifier":
        classes = list(getattr(estimator, "classes_", []))
        if getattr(estimator, "multilabel_", False) or getattr(estimator, "_multilabel", False):
            return f"{len(classes)} labels at once (multi-label): `predict` gives a 0/1 indicator matrix."
        shown = ", ".join(f"`{c}`" for c in classes[:20]) + (" ..." if len(classes) > 20 else "")
        return f"One of {len(classes)} classes: {shown}. `predict_proba` gives each class's probability."
    if kind == "regressor":
        n = int(getattr(estimator, "n_outputs_", 1))
        return "One number per sample." if n == 1 else f"{n} numbers per sample (one per target)."
    width = getattr(estimator, "n_features_out_", None)
    return f"Features: `transform` gives {width} numbers per sample, the frozen backbone's features."


def _inputs(estimator, config: dict) -> tuple[str, str]:
    """``(description, example call)`` of the data the model takes."""
    branches = config.get("branches")
    method = "transform" if KINDS.get(config["estimator"]) == "embedder" else "predict"
    if branches:
        columns = ", ".join(f"`{b['column']}` ({b['backbone']['modality']})" for b in branches)
        return f"A DataFrame (or dict of columns) with the columns {columns}.", f"model.{method}(frame)"
    modality = config["backbone"]["modality"]
    text = INPUTS[modality][0].upper() + INPUTS[modality][1:]
    if modality == "tabular" and hasattr(estimator, "n_features_in_"):
        text += f" with {int(estimator.n_features_in_)} columns"
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:
            text += " (" + ", ".join(f"`{n}`" for n in names) + ")"
    example = {"text": f'model.{method}(["an example text"])', "image": f'model.{method}(["photo.jpg"])'}
    return text + ".", example.get(modality, f"model.{method}(X)")


def _scores(metrics: dict, dataset: str, validation: dict) -> str:
    if not metrics and not validation:
        return "No scores were recorded with this model."
    def cell(text: str) -> str:  # a "|" in a name would end the table cell
        return text.replace("|", "\\|")

    lines = ["## Scores", "", "| metric | value | data |", "|---|---|---|"]
    lines += [f"| {cell(name)} | {value:.4g} | {cell(dataset)} |" for name, value in metrics.items()]
    lines += [f"| {name} | {value:.4g} | validation split, last epoch |" for name, value in validation.items()]
    return "\n".join(lines)


def _param_rows(params: dict) -> list[tuple[str, str]]:
    rows = []
    for name in TRAINING_PARAMS:
        if name in params and params[name] is not None:
            rows.append((name, str(params[name])))
    return rows


def _chosen_layers(estimator, params: dict) -> list[tuple[str, str]]:
    """The stages the fit chose where ``layers`` was left at None (small image data)."""
    chosen = getattr(estimator, "layers_", None)
    return [("layers_", str(chosen))] if params.get("layers") is None and chosen is not None else []


def build_card(estimator, config: dict, *, metrics=None, metrics_dataset=None, repo_id=None):
    """The ``huggingface_hub.ModelCard`` of ``estimator``, saved as ``config``."""
    from huggingface_hub import ModelCard, ModelCardData

    kind = KINDS.get(config["estimator"], "estimator")
    modalities = _modalities(config)
    records = _backbones(config)
    weights = [_weights(record) for record in records]
    hub_ids = [w.hub_id for w in weights if w is not None and w.hub_id]
    licenses = {w.license for w in weights if w is not None and w.license}
    pipeline_tag = PIPELINE_TAGS.get((kind, modalities[0])) if len(modalities) == 1 else None
    metrics = check_metrics(metrics)
    dataset = metrics_dataset or "evaluation data (not named when saved)"
    validation = validation_scores(estimator)
    params = estimator.get_params(deep=False)
    strategy = params.get("strategy", "head")
    card_data = ModelCardData(
        library_name="sktransfer",
        base_model=(hub_ids[0] if len(hub_ids) == 1 else hub_ids) or None,
        # Several backbones with different licenses: the card can't name one.
        license=licenses.pop() if len(licenses) == 1 else None,
        pipeline_tag=pipeline_tag,
        tags=["sktransfer", "scikit-learn", "transfer-learning", *sorted(set(modalities)), f"strategy-{strategy}"],
        model_name=f"sktransfer {config['estimator']}",
        eval_results=_eval_results(pipeline_tag or kind, metrics, dataset, validation),
    )
    names = ", ".join(_describe_backbone(record, w, params) for record, w in zip(records, weights))
    inputs, usage = _inputs(estimator, config)
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        title=f"{config['estimator']} on {', '.join(r['name'] for r in records)}",
        summary=(f"A scikit-learn {config['estimator']} made with sktransfer {config['sktransfer_version']} on the "
                 f"backbone {names}, trained with strategy `{strategy}`."),
        predicts=_predicts(estimator, kind),
        inputs=inputs,
        usage=usage,
        location=f'"hf://{repo_id}"' if repo_id else '"hf://OWNER/NAME"',
        params=_param_rows(params) + _chosen_layers(estimator, params),
        scores=_scores(metrics, dataset, validation),
    )


def remember_card(estimator, path: Path, config: dict) -> None:
    """Keep the text of the card in ``path`` (if any) with the loaded estimator; the
    model itself never depends on it."""
    card = Path(path) / CARD
    try:
        text = card.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # no card, or one we can't read: a new one when saved
        return
    setattr(estimator, LOADED_CARD, (config.get("checksum"), text))


def write_card(path: Path, estimator, config: dict, *, card="auto", metrics=None, metrics_dataset=None,
               repo_id=None) -> None:
    """Write ``README.md`` to ``path``: the card the model was loaded with, when the model
    is unchanged (same config checksum), ``card="auto"`` and no new ``metrics``; else a new one."""
    from huggingface_hub import ModelCard

    if isinstance(card, ModelCard):
        text = str(card)
    else:
        kept = getattr(estimator, LOADED_CARD, None)
        if card == "auto" and not metrics and kept is not None and kept[0] == config.get("checksum"):
            text = kept[1]
        else:
            text = str(build_card(estimator, config, metrics=metrics, metrics_dataset=metrics_dataset,
                                  repo_id=repo_id))
    (Path(path) / CARD).write_text(text, encoding="utf-8")

