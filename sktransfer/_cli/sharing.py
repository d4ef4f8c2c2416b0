"""``sktransfer push`` (a model directory to the Hugging Face Hub) and ``sktransfer serve``
(a model over HTTP through MLflow's scoring server). Heavy modules are imported inside
the commands: ``sktransfer --help`` stays torch-free."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile


def add_push_arguments(parser) -> None:
    parser.add_argument("model", help="a model directory written by `sktransfer fit` or save_pretrained")
    parser.add_argument("repo_id", help="the Hub repository, owner/name (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--message", help="the commit message")
    parser.add_argument("--new-card", action="store_true",
                        help="write a fresh README.md model card instead of keeping the directory's")


def cmd_push(args) -> int:
    from sktransfer import load
    from sktransfer._persistence.hub import check_repo_id

    check_repo_id(args.repo_id)  # before loading the model: a typo costs nothing
    # Loaded first, so that a damaged directory is refused here rather than by its users;
    # the token comes from `hf auth login` or HF_TOKEN, as for every Hub tool.
    url = load(args.model, device="cpu").push_to_hub(args.repo_id, private=args.private,
                                                     commit_message=args.message,
                                                     card="new" if args.new_card else "auto")
    print(f"pushed {args.model} to https://huggingface.co/{args.repo_id} ({url})")
    return 0


def add_serve_arguments(parser) -> None:
    parser.add_argument("model", help="a model directory, or hf://owner/name")
    parser.add_argument("--port", type=int, default=5000, help="the port to listen on (default: 5000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the interface to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--input-column", help="the request column of a text or image model (default: text, image)")


def cmd_serve(args) -> int:
    from sktransfer import load
    from sktransfer.mlflow import save_model

    if not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port} is not a port number (1-65535).")
    estimator = load(args.model, device="cpu")
    with tempfile.TemporaryDirectory(prefix="sktransfer-serve-") as folder:
        path = os.path.join(folder, "mlflow-model")
        save_model(estimator, path, input_column=args.input_column)
        print(f"serving {args.model} on http://{args.host}:{args.port}/invocations (Ctrl-C stops)", flush=True)
        # MLflow's own scoring server, in this environment (--env-manager local).
        command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", path, "--env-manager", "local",
                   "--host", args.host, "--port", str(args.port)]
        # MLflow starts `uvicorn` by name: this environment's scripts come first, even when
        # sktransfer runs as `.venv/bin/python -m sktransfer` with the venv not activated.
        path_var = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
        return subprocess.call(command, env={**os.environ, "PATH": path_var})
