"""`sktransfer push` and `sktransfer serve`: exit codes and messages, offline."""

import numpy as np
import pytest
from _hub_fakes import RecordingHfApi

import sktransfer
from sktransfer import TransferClassifier
from sktransfer.__main__ import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    X = np.random.RandomState(0).normal(size=(30, 5))
    model = TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X, np.where(X[:, 0] > 0, "up", "down"))
    return model.save_pretrained(tmp_path_factory.mktemp("cli") / "model")


def test_push_uploads_the_loaded_model_keeping_its_card(model_dir, monkeypatch, tmp_path, capsys):
    import huggingface_hub

    RecordingHfApi.calls, RecordingHfApi.destination = [], tmp_path / "uploaded"
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    (model_dir / "README.md").write_text((model_dir / "README.md").read_text() + "\nEdited.\n")
    assert main(["push", str(model_dir), "alice/updown", "--private", "--message", "v1"]) == 0
    assert "https://huggingface.co/alice/updown" in capsys.readouterr().out
    assert RecordingHfApi.calls[0][2]["private"] is True and RecordingHfApi.calls[1][2]["commit_message"] == "v1"
    assert (RecordingHfApi.destination / "README.md").read_text() == (model_dir / "README.md").read_text()
    assert sktransfer.load(RecordingHfApi.destination).classes_.tolist() == ["down", "up"]


@pytest.mark.parametrize("argv, message", [
    (["push", "MODEL", "not-a-repo-id"], "repo_id must be 'owner/name'"),
    (["push", "no/such/dir", "alice/x"], "config.json is missing"),
    (["serve", "MODEL", "--port", "0"], "is not a port number"),
    (["serve", "hf://alice"], "hf://owner/name"),
])
def test_bad_input_exits_2_with_one_line(model_dir, argv, message, capsys):
    argv = [str(model_dir) if a == "MODEL" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
