"""The ViT model: distilled beside the teacher's frozen text tower; the shipped one really works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

import clipviz  # noqa: E402
from clipviz.train import TrainConfig  # noqa: E402
from clipviz.train.distill import TEXT_PREFIXES, teacher_folder  # noqa: E402
from clipviz.train.export import export, load_exported  # noqa: E402
from clipviz.train.loop import CHECKPOINT, train  # noqa: E402

FOLDER = Path(clipviz.__file__).parent / "models" / "weights" / "clipviz-shapes-vit"
# a narrow ViT keeps the test fast; the recipe is the shipped one's otherwise
TINY = dict(
    n_pairs=256,
    batch_size=64,
    processes=1,
    checkpoint_every=4,
    lr=2e-3,
    arch="vit",
    vit_width=64,
    vit_layers=2,
    distill_weight=5.0,
    label_weight=1.0,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vit")
    model, summary = train(TrainConfig(steps=12, **TINY), out, progress=False)
    return out, model, summary


def test_text_side_is_the_teachers_and_stays_frozen(tiny_run):
    _, model, _ = tiny_run
    teacher, _, _ = load_exported(teacher_folder("clipviz-shapes"))
    ref = teacher.float().state_dict()
    text = {k: v for k, v in model.state_dict().items() if k.startswith(TEXT_PREFIXES)}
    assert "token_embedding.weight" in text and "text_projection" in text
    for k, v in text.items():
        assert torch.equal(v.float(), ref[k].float()), k
    assert model.visual.conv1.kernel_size == (8, 8)  # a ViT tower, not the teacher's ResNet


def test_distillation_and_label_losses_go_down(tiny_run):
    out, _, summary = tiny_run
    log = torch.load(out / CHECKPOINT, weights_only=True)["log"]
    # step, total, then the parts: clip, distill, label
    assert summary["steps_done"] == 12 and all(len(row) == 5 for row in log)
    for column in (3, 4):
        part = [row[column] for row in log]
        assert np.mean(part[-3:]) < np.mean(part[:3]) - 0.05, (column, part)


def test_vit_run_resumes_exactly(tiny_run, tmp_path):
    _, full, _ = tiny_run
    cfg = TrainConfig(steps=12, **TINY)
    train(cfg, tmp_path, minutes=0.0, progress=False)
    resumed, summary = train(cfg, tmp_path, progress=False)
    assert summary["resumed_from"] == 1
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k


def test_checkpoint_from_before_the_vit_fields_still_resumes(tmp_path):
    cfg = TrainConfig(steps=2, n_pairs=128, batch_size=64, processes=1, checkpoint_every=1)
    train(cfg, tmp_path, minutes=0.0, progress=False)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    for key in (
        "arch",
        "teacher",
        "distill_weight",
        "distill_varied",
        "label_weight",
        "vit_patch",
        "vit_width",
        "vit_layers",
    ):
        del state["config"][key]  # as the ResNet run in progress wrote it
    torch.save(state, tmp_path / CHECKPOINT)
    _, summary = train(cfg, tmp_path, progress=False)
    assert summary["resumed_from"] == 1 and summary["steps_done"] == 2


def test_unknown_teacher_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="neither a bundled model"):
        teacher_folder(str(tmp_path / "nothing-here"))
    from clipviz.train.__main__ import main

    assert main(["--arch", "vit", "--teacher", "nope", "--out", str(tmp_path), "--steps", "1"]) == 2


def test_export_writes_the_vit_config(tiny_run, tmp_path):
    _, model, _ = tiny_run
    cfg = TrainConfig(steps=12, **TINY)
    folder = export(model, tmp_path / "m", model_cfg=cfg.model_cfg(), name=cfg.model_name())
    saved = json.loads((folder / "open_clip_config.json").read_text())
    assert saved["model_name"] == "clipviz-shapes-vit"
    assert saved["model_cfg"]["vision_cfg"]["patch_size"] == 8
    loaded, _, tokenizer = load_exported(folder)
    img = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.encode_image(img), loaded.encode_image(img), atol=2e-2)
    assert tokenizer.context_length == 16


@pytest.mark.skipif(not FOLDER.is_dir(), reason="clipviz-shapes-vit is not trained in this tree")
def test_shipped_vit_loads_offline_and_scores_well_above_chance():
    import clipviz.models as models
    from clipviz.train.evaluate import evaluate

    weights = FOLDER / "open_clip_model.safetensors"
    assert weights.stat().st_size < 10 * 1024 * 1024
    assert "clipviz-shapes-vit" in models.bundled_names()
    cm = models.load_model("clipviz-shapes-vit", device="cpu")
    assert cm.tokenizer.context_length == 16
    model, _, tokenizer = load_exported(FOLDER)
    acc = evaluate(model, tokenizer, n=300, seed=424_243, ensemble=False)["single"]
    # chance: shape 17%, colour 12.5%, 48-way 2%; the shipped model (H-full, 2,000 images per
    # set): shape 98.6%, colour 100%, seen 99.8%. Floors a wrong or stale file would fail,
    # with room for 300 images' noise.
    assert acc["shape"] >= 0.93, acc
    assert acc["colour"] >= 0.97, acc
    assert acc["seen"] >= 0.93, acc


@pytest.fixture(scope="module")
def tiny_export(tiny_run, tmp_path_factory):
    _, model, _ = tiny_run
    cfg = TrainConfig(steps=12, **TINY)
    folder = tmp_path_factory.mktemp("init") / "model"
    meta = {
        "command": "python -m clipviz.train --tiny",
        "chain": ["python -m clipviz.train --tiny"],
    }
    return export(model, folder, meta=meta, model_cfg=cfg.model_cfg(), name=cfg.model_name())


def test_init_from_starts_the_image_tower_from_the_exported_model(tiny_export):
    from clipviz.train.data import PairData
    from clipviz.train.distill import DistillStep

    init, _, _ = load_exported(tiny_export)
    ref = init.state_dict()
    cfg = TrainConfig(steps=1, **{**TINY, "n_pairs": 64}, init_from=str(tiny_export.parent))
    data = PairData(64, 0, shape_only=0.1, colour_only=0.04, processes=1)
    student = DistillStep(cfg, data).model  # the weights the first step starts from
    visual = {k: v for k, v in student.state_dict().items() if k.startswith("visual.")}
    assert len(visual) > 10
    for k, v in visual.items():
        assert torch.equal(v, ref[k].float()), k
    fresh = DistillStep(TrainConfig(steps=1, **{**TINY, "n_pairs": 64}), data).model
    assert not torch.equal(fresh.visual.conv1.weight, student.visual.conv1.weight)
    assert all(p.requires_grad for n, p in student.named_parameters() if n.startswith("visual."))


def test_init_from_is_recorded_in_the_summary_and_the_export_chain(tiny_export, tmp_path):
    from clipviz.train.__main__ import main

    args = ["--arch", "vit", "--out", str(tmp_path), "--steps", "2", "--pairs", "128"]
    args += ["--batch-size", "64", "--width", "64", "--layers", "2", "--eval-images", "0"]
    assert main([*args, "--init-from", str(tiny_export)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["init_from"] == str(tiny_export)
    meta = json.loads((tmp_path / "model" / "open_clip_config.json").read_text())["clipviz"]
    assert meta["chain"][0] == "python -m clipviz.train --tiny"
    assert meta["chain"][1] == meta["command"] and "--init-from" in meta["command"]


def test_missing_or_incompatible_init_is_a_clear_error(tiny_export, tmp_path):
    from clipviz.train.__main__ import main
    from clipviz.train.distill import check_init

    with pytest.raises(ValueError, match="neither a bundled model"):
        check_init(TrainConfig(arch="vit", init_from=str(tmp_path / "nothing-here")))
    # the tiny tower (width 64, 2 blocks) does not fit the default recipe's (128, 4)
    with pytest.raises(ValueError, match="pass the same --patch/--width/--layers"):
        check_init(TrainConfig(arch="vit", init_from=str(tiny_export)))
    # the ResNet teacher is no ViT image tower
    with pytest.raises(ValueError, match="has the image tower"):
        check_init(TrainConfig(arch="vit", init_from="clipviz-shapes"))
    out = str(tmp_path / "run")
    assert main(["--arch", "vit", "--init-from", str(tiny_export), "--out", out]) == 2
    assert main(["--init-from", str(tiny_export), "--out", out]) == 2  # resnet: no init
    assert not (tmp_path / "run").exists()


def test_init_trained_beside_another_text_tower_is_refused(tiny_run, tmp_path):
    import copy

    from clipviz.train.distill import build_student, load_teacher

    _, model, _ = tiny_run
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.text_projection.add_(1.0)
    cfg = TrainConfig(steps=1, **TINY, init_from=str(tmp_path / "m"))
    export(other, tmp_path / "m", model_cfg=cfg.model_cfg(), name=cfg.model_name())
    with pytest.raises(ValueError, match="another text tower"):
        build_student(cfg, load_teacher(cfg.teacher))


def test_stop_after_stops_at_that_step_and_resumes_to_the_full_run(tiny_run, tmp_path):
    _, full, _ = tiny_run
    cfg = TrainConfig(steps=12, **TINY)
    _, summary = train(cfg, tmp_path, stop_after=5, progress=False)
    assert summary["steps_done"] == 5
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["step"] == 5
    resumed, summary = train(cfg, tmp_path, progress=False)
    assert summary["resumed_from"] == 5 and summary["steps_done"] == 12
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
