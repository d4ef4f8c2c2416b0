"""`sktransfer serve`: MLflow's scoring server (``mlflow models serve --env-manager local``)
on 127.0.0.1, answering a JSON request as the estimator predicts. Always stopped."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import sktransfer
from sktransfer import TransferClassifier

pytest.importorskip("mlflow")
ROOT = Path(sktransfer.__file__).parents[1]
START_UP = 180  # seconds: the server imports mlflow, torch and the model on a busy machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_until_up(server: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_UP
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"the server did not answer {url} within {START_UP} s")


@pytest.mark.slow
def test_serve_answers_a_json_request_as_the_estimator_predicts(sentences, tmp_path):
    texts, labels = sentences
    model = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1, random_state=0).fit(texts, labels)
    path = model.save_pretrained(tmp_path / "model")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "sktransfer", "serve", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
        start_new_session=True,  # its own process group: the MLflow server under it stops with it
    )
    try:
        wait_until_up(server, f"http://127.0.0.1:{port}/ping")
        status, answer = post(f"http://127.0.0.1:{port}/invocations",
                              {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts[:6]]}})
        assert status == 200, answer
        assert answer["predictions"] == list(model.predict(texts[:6]))
        status, answer = post(f"http://127.0.0.1:{port}/invocations", {"inputs": texts[6:9]})
        assert status == 200 and answer["predictions"] == list(model.predict(texts[6:9]))
        status, answer = post(f"http://127.0.0.1:{port}/invocations",
                              {"dataframe_split": {"columns": ["review"], "data": [["great"]]}})
        assert status >= 400 and "['text']" in json.dumps(answer)
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """Stop the server's process group (sktransfer serve, mlflow, uvicorn), killing it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:  # already gone
            pass
        try:
            server.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    server.stdout.close()
