"""The model card (README.md) that save_pretrained writes: huggingface_hub's ModelCard,
the scores it was given or the estimator recorded and no other, and a user's edits kept."""

import numpy as np
import pytest
from huggingface_hub import ModelCard

import sktransfer
from sktransfer import TransferClassifier, TransferEmbedder, TransferRegressor


@pytest.fixture(scope="module")
def tabular():
    X = np.random.RandomState(0).normal(size=(40, 5))
    return X, np.where(X[:, 0] > 0, "up", "down")


@pytest.fixture(scope="module")
def mlp(tabular):
    return TransferClassifier("mlp", max_epochs=3, random_state=0, validation_fraction=0.25).fit(*tabular)


@pytest.fixture(scope="module")
def minilm(sentences):
    return TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=2, random_state=0).fit(*sentences)


def card_of(path) -> ModelCard:
    return ModelCard.load(path / "README.md")


def test_text_card_names_the_base_model_license_task_and_classes(minilm, tmp_path):
    card = card_of(minilm.save_pretrained(tmp_path / "m"))
    data = card.data.to_dict()
    assert data["library_name"] == "sktransfer"
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert data["license"] == "apache-2.0"
    assert data["pipeline_tag"] == "text-classification"
    assert {"sktransfer", "text", "strategy-head"} <= set(data["tags"])
    assert "`neg`, `pos`" in card.text and "| `strategy` | `head` |" in card.text
    assert 'model.predict(["an example text"])' in card.text and "sktransfer.load_onnx" in card.text


def test_scores_are_the_given_metrics_and_the_recorded_validation_loss_only(mlp, tmp_path):
    card = card_of(mlp.save_pretrained(tmp_path / "m", metrics={"accuracy": 0.8125, "f1": 0.8},
                                       metrics_dataset="40 held-out rows"))
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    last = mlp.net_.history[-1]
    expected = {("40 held-out rows", "accuracy"): 0.8125, ("40 held-out rows", "f1"): 0.8,
                ("validation split", "valid_loss"): last["valid_loss"]}
    if "valid_acc" in last:
        expected["validation split", "valid_acc"] = last["valid_acc"]
    assert results == pytest.approx(expected)
    assert "| accuracy | 0.8125 | 40 held-out rows |" in card.text


def test_a_model_without_scores_says_so_and_has_no_model_index(tabular, tmp_path):
    model = TransferClassifier("mlp", max_epochs=1, random_state=0).fit(*tabular)
    card = card_of(model.save_pretrained(tmp_path / "m"))
    assert card.data.eval_results is None and "No scores were recorded" in card.text
    assert "base_model" not in card.data.to_dict() and "(trained from scratch)" in card.text


def test_an_edited_card_survives_load_and_a_resave_elsewhere(mlp, tabular, tmp_path):
    first = mlp.save_pretrained(tmp_path / "a")
    edited = (first / "README.md").read_text() + "\nMy own notes about this model.\n"
    (first / "README.md").write_text(edited)
    loaded = sktransfer.load(first)
    assert (loaded.save_pretrained(tmp_path / "b") / "README.md").read_text() == edited
    # Asked for: a fresh card. Refitted, or given new scores: the old card no longer describes it.
    assert "My own notes" not in (loaded.save_pretrained(tmp_path / "c", card="new") / "README.md").read_text()
    assert "My own notes" not in (loaded.save_pretrained(tmp_path / "d", metrics={"accuracy": 1.0}) /
                                  "README.md").read_text()
    loaded.set_params(max_epochs=1).fit(*tabular)
    assert "My own notes" not in (loaded.save_pretrained(tmp_path / "e") / "README.md").read_text()
    assert (first / "README.md").read_text() == edited  # saving elsewhere never touched the original


def test_a_given_model_card_is_written_as_it_is(mlp, tmp_path):
    card = ModelCard("---\nlibrary_name: sktransfer\n---\n# Mine\n")
    assert (mlp.save_pretrained(tmp_path / "m", card=card) / "README.md").read_text() == str(card)


def test_loading_never_needs_the_card(mlp, tabular, tmp_path):
    path = mlp.save_pretrained(tmp_path / "m")
    (path / "README.md").unlink()
    np.testing.assert_array_equal(sktransfer.load(path).predict(tabular[0]), mlp.predict(tabular[0]))


def test_regressor_and_embedder_cards(tabular, sentences, tmp_path):
    X = tabular[0]
    regressor = TransferRegressor("mlp", max_epochs=1, random_state=0).fit(X, X[:, :2])
    card = card_of(regressor.save_pretrained(tmp_path / "r"))
    assert card.data.pipeline_tag == "tabular-regression" and "2 numbers per sample" in card.text
    assert "with 5 columns" in card.text
    embedder = TransferEmbedder("all-MiniLM-L6-v2").fit(sentences[0][:2])
    card = card_of(embedder.save_pretrained(tmp_path / "e"))
    assert card.data.pipeline_tag == "feature-extraction" and "384 numbers per sample" in card.text
    assert "model.transform(" in card.text


@pytest.mark.parametrize("kwargs, error, message", [
    ({"metrics": [0.9]}, TypeError, "dict of metric name"),
    ({"metrics": {"accuracy": "high"}}, ValueError, "finite number"),
    ({"metrics": {"accuracy": float("nan")}}, ValueError, "finite number"),
    ({"metrics": {"": 0.5}}, TypeError, "non-empty strings"),
    ({"card": "fresh"}, ValueError, "'auto', 'new' or a huggingface_hub.ModelCard"),
])
def test_bad_card_arguments_are_refused_before_writing(mlp, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        mlp.save_pretrained(tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()
