"""A tiny training run: the loss falls, checkpoints resume exactly, export loads in open_clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from clipviz.train import TrainConfig  # noqa: E402
from clipviz.train.data import augment, mix_captions  # noqa: E402
from clipviz.train.export import export, load_exported  # noqa: E402
from clipviz.train.loop import lr_at, train  # noqa: E402

TINY = dict(n_pairs=256, batch_size=64, processes=1, checkpoint_every=4, lr=2e-3)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    model, summary = train(TrainConfig(steps=12, **TINY), out, progress=False)
    return out, model, summary


def test_loss_goes_down(tiny_run):
    out, _, summary = tiny_run
    losses = [loss for _, loss in torch.load(out / "checkpoint.pt", weights_only=True)["log"]]
    assert len(losses) == 12 and summary["steps_done"] == 12
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1, losses


def test_resume_continues_exactly(tiny_run, tmp_path):
    _, full_model, _ = tiny_run
    cfg = TrainConfig(steps=12, **TINY)
    train(cfg, tmp_path, minutes=0.0, progress=False)  # stops (with a checkpoint) after 1 step
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 1
    resumed, summary = train(cfg, tmp_path, progress=False)
    assert summary["resumed_from"] == 1 and summary["steps_done"] == 12
    for (k, a), b in zip(
        full_model.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k


class _Evil:
    def __reduce__(self):
        return (print, ("checkpoint payload ran",))


def test_planted_pickle_checkpoint_is_refused_not_run(tmp_path, capsys):
    from clipviz.models import UnsafeCheckpointError

    torch.save({"step": 1, "payload": _Evil()}, tmp_path / "checkpoint.pt")
    with pytest.raises(UnsafeCheckpointError, match="pickled Python objects") as err:
        train(TrainConfig(steps=12, **TINY), tmp_path, progress=False)
    assert "weights_only=False" not in str(err.value)
    assert "payload ran" not in capsys.readouterr().out


def test_resume_with_other_recipe_is_refused(tiny_run):
    out, _, _ = tiny_run
    with pytest.raises(ValueError, match="different recipe"):
        train(TrainConfig(steps=13, **TINY), out, progress=False)


def test_export_round_trips_through_open_clip(tiny_run, tmp_path):
    _, model, _ = tiny_run
    folder = export(model, tmp_path / "m", meta={"note": "test"})
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    assert cfg["model_cfg"]["text_cfg"]["context_length"] == 16 and cfg["clipviz"]["note"] == "test"
    loaded, preprocess, tokenizer = load_exported(folder)
    assert tokenizer.context_length == 16  # not open_clip's silent 77-token default
    text = tokenizer(["a photo of a red circle."])
    img = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in (
            (model.encode_text(text), loaded.encode_text(text)),
            (model.encode_image(img), loaded.encode_image(img)),
        ):
            # fp16 storage: close, not equal
            assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999
    from PIL import Image

    assert preprocess(Image.new("RGB", (64, 64))).shape == (3, 64, 64)


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, lr=1e-3)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] < lrs[4] == pytest.approx(1e-3) and lrs[-1] < 1e-5
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:], strict=False))


def test_caption_mix_and_augment_keep_labels():
    import pandas as pd

    labels = pd.DataFrame(
        {
            "shape": ["star"] * 400,
            "colour": ["red"] * 400,
            "size": ["small"] * 400,
            "background": ["dark"] * 400,
        }
    )
    caps = mix_captions(["a photo of a small red star"] * 400, labels, 0, 0.2, 0.1)
    only_shape = [c for c in caps if "star" in c and "red" not in c]
    only_colour = [c for c in caps if "red" in c and "star" not in c]
    assert 40 < len(only_shape) < 120 and 10 < len(only_colour) < 70
    assert all("star" in c or "red" in c for c in caps)
    x = torch.rand(8, 3, 64, 64)
    y = augment(x, np.random.default_rng(0))
    assert y.shape == x.shape and torch.allclose(y.sum(), x.sum())  # pixels moved, none lost
