"""Training across processes (``--coordinator --processes --process-id``, JAX's multi-process
runtime): two processes on 127.0.0.1, on the CPU with gloo, train as one process on the same
global batch does, and only process 0 writes the run's files and the zoo entry.

The three ``imgfix train vae`` processes (the reference and the two workers) run at once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_generate import make_corpora

pytestmark = pytest.mark.slow
STEPS = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(root: Path, tag: str, *cluster: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # XLA's cheapest CPU code: a few steps do not repay its full optimisation
        "XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true",
    }
    command = [
        *(sys.executable, "-m", "imgfix", "--backend", "jax", "--seed", "0", "--json"),
        *("--zoo", str(root / "zoo" / tag), "train", "vae", "--data", str(root / "shapes")),
        *("--name", "v", "--condition", "label", "--steps", str(STEPS), "--batch-size", "4"),
        *("--filters", "8", "--z-dim", "8", "--checkpoints", "1"),
        *("--logdir", str(root / "runs" / tag), *cluster),
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _done(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def _weights(path: Path) -> list[np.ndarray]:
    """The checkpoint's arrays, read from the archive without Keras."""
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as raw:
        arrays = []

        def take(_name, item) -> None:  # visititems stops at the first value returned
            if isinstance(item, h5py.Dataset):
                arrays.append(item[()])

        h5py.File(raw, "r").visititems(take)
        return arrays


def test_two_processes_train_as_one_and_only_the_chief_writes(tmp_path):
    make_corpora(tmp_path)
    address = f"127.0.0.1:{_free_port()}"
    one = _train(tmp_path, "one")
    workers = [
        _train(tmp_path, "two", "--coordinator", address, "--processes", "2", "--process-id", k)
        for k in ("0", "1")
    ]
    reference, *reports = [_done(p) for p in [one, *workers]]

    # Each process computed the same figures, those of one process taking the whole batch.
    for report in reports:
        assert report["steps"] == reference["steps"] == STEPS
        for key in ("loss", "rec", "kl"):
            assert report[key] == pytest.approx(reference[key], rel=1e-4), key
    ours, theirs = (tmp_path / "runs" / t / "checkpoint.keras" for t in ("two", "one"))
    pairs = list(zip(_weights(ours), _weights(theirs), strict=True))
    assert len(pairs) > 20
    # Adam's first steps move each weight by about lr (1e-3) whatever its gradient, so a
    # gradient that differs in its last bits may move a weight the other way: STEPS * 2e-3.
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=0, atol=STEPS * 2e-3)

    # One writer: one log line per checkpoint (two writers would double them), one zoo entry.
    lines = [json.loads(x) for x in (ours.parent / "log.jsonl").read_text().splitlines()]
    expected = (theirs.parent / "log.jsonl").read_text().splitlines()
    assert [x["step"] for x in lines] == [json.loads(x)["step"] for x in expected]
    assert sorted(p.name for p in (tmp_path / "zoo" / "two").iterdir()) == [
        "v.json",
        "v.keras",
        "v.tflite",
    ]
    card = json.loads((tmp_path / "zoo" / "two" / "v.json").read_text())
    assert card["steps"] == STEPS


def test_cluster_options_are_checked_before_training(tmp_path):
    from imgfix.errors import InputError
    from imgfix.training.devices import parse_cluster

    assert parse_cluster(None, None, None) is None
    assert parse_cluster("10.0.0.1:1234", 2, 1).process_id == 1
    with pytest.raises(InputError, match="go together"):
        parse_cluster("10.0.0.1:1234", 2, None)
    with pytest.raises(InputError, match="HOST:PORT"):
        parse_cluster("10.0.0.1", 2, 0)
    with pytest.raises(InputError, match="between 0 and 1"):
        parse_cluster("10.0.0.1:1234", 2, 2)
