"""load_model: the bundled model, local checkpoints, and the errors people meet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clipviz.models as M
from clipviz.models import _bundled

ARCH = "clipviz-test-arch"  # the bundled architecture registered under another name


@pytest.fixture(scope="module")
def bundled_files():
    return _bundled.bundled_files("clipviz-shapes")


@pytest.fixture(scope="module")
def arch(bundled_files):
    _bundled.register(ARCH, bundled_files[0])
    return ARCH


def test_bundled_model_loads_with_its_own_context_and_preprocessing(shapes_model):
    m = shapes_model
    assert m.context_length == 16  # not open_clip's default 77: the config was registered
    assert m.tokenizer.context_length == 16
    assert m.image_size == (64, 64)
    assert m.preprocess(Image.new("RGB", (300, 200))).shape == (3, 64, 64)
    assert m.device.type == "cpu" and m.precision == "fp32"
    expected = float(m.torch_model.logit_scale.detach().exp())
    assert m.logit_scale == pytest.approx(expected) and m.info.logit_scale == m.logit_scale
    assert len(m.key) == 64 and m.info.key == m.key and m.info.name == "clipviz-shapes"
    assert not m.torch_model.training


def test_encoders_return_unit_float32(shapes_model):
    img = shapes_model.encode_pil([Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64))])
    txt = shapes_model.encode_texts(["a red circle", "a blue star", "a red circle"])
    for v in (img, txt):
        assert v.dtype == np.float32 and v.shape[1] == shapes_model.dim
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(txt[0], txt[2], atol=1e-6)  # deterministic
    assert not np.allclose(txt[0], txt[1])
    with pytest.raises(TypeError, match="list of strings"):
        shapes_model.encode_texts("a red circle")
    with pytest.raises(TypeError, match=r"\(N, 3, H, W\)"):
        shapes_model.encode_images(np.zeros((1, 3, 64, 64)))


def test_long_prompt_warns_before_truncation(shapes_model):
    short = "a small red circle"
    long = "a photo of a very small and quite shiny red circle on a dark gray noisy background"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shapes_model.encode_texts([short])  # fits: no warning
    with pytest.warns(M.PromptTruncatedWarning, match=r"context of 16 tokens.*\d+ tokens"):
        shapes_model.encode_texts([short, long])


def test_unknown_name_lists_close_matches():
    with pytest.raises(M.UnknownModelError, match=r"'ViT-B-32'.*clipviz-shapes"):
        M.load_model("ViT-B-33")
    with pytest.raises(M.UnknownModelError, match=r"Did you mean: 'ViT-B-32'\?"):
        M.load_model("vit-b-32")
    with pytest.raises(M.UnknownModelError, match="'clipviz-shapes'"):
        M.load_model("clipviz-shape")


def test_random_weights_are_refused_unless_asked(arch):
    with pytest.raises(M.RandomWeightsError, match=r"'openai'.*allow_random=True"):
        M.load_model("ViT-B-32")
    a = M.load_model(arch, allow_random=True, device="cpu")
    b = M.load_model(arch, allow_random=True, device="cpu")
    assert a.key == b.key  # seeded: the same "random" model in every process
    np.testing.assert_array_equal(a.encode_texts(["x"]), b.encode_texts(["x"]))


def test_unknown_tag_lists_the_models_tags():
    with pytest.raises(M.UnknownPretrainedError, match=r"'nope' for 'ViT-B-32'.*'openai'"):
        M.load_model("ViT-B-32", pretrained="nope")


def test_offline_tag_explains_how_to_get_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(M.WeightsUnavailableError) as err:
        M.load_model("RN50", pretrained="openai", cache_dir=str(tmp_path))
    msg = str(err.value)
    assert "pretrained='openai'" in msg and "create_model('RN50'" in msg
    assert "HF_HOME" in msg and "pretrained=" in msg and "clipviz-shapes" in msg


def test_precision_errors():
    with pytest.raises(M.PrecisionError, match="needs a GPU"):
        M.load_model("clipviz-shapes", device="cpu", precision="fp16")
    with pytest.raises(M.PrecisionError, match="'fp8'"):
        M.load_model("clipviz-shapes", device="cpu", precision="fp8")
    assert M.resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else None
    assert expected is None or M.resolve_device("auto").type == expected


def test_bf16_on_cpu_encodes(shapes_model):
    m = M.load_model("clipviz-shapes", device="cpu", precision="bf16")
    v = m.encode_texts(["a red circle"])
    assert v.dtype == np.float32
    ref = shapes_model.encode_texts(["a red circle"])
    assert float(v[0] @ ref[0]) > 0.95  # same model, lower precision
    assert m.key != shapes_model.key  # bf16 vectors differ: their own key, their own cache


def test_cache_never_hands_one_precision_the_others_vectors(shapes_model, tmp_path):
    from clipviz.datasets import shapes
    from clipviz.engine import embed_images

    images = shapes(8, seed=5).to_imageset(label="shape")
    bf16 = M.load_model("clipviz-shapes", device="cpu", precision="bf16")
    fresh_bf16 = embed_images(bf16, images, cache=False, progress=False).vectors
    fp32 = embed_images(shapes_model, images, cache=tmp_path, progress=False).vectors
    cached_bf16 = embed_images(bf16, images, cache=tmp_path, progress=False).vectors
    again_fp32 = embed_images(shapes_model, images, cache=tmp_path, progress=False).vectors
    # the cache stores fp16: "the same vectors" means within its rounding (< 1.3e-4 here, all
    # entries below 0.5), while bf16 and fp32 differ by more than 1e-3
    assert np.abs(fp32 - fresh_bf16).max() > 1e-3
    np.testing.assert_allclose(cached_bf16, fresh_bf16, atol=2.5e-4)
    np.testing.assert_array_equal(again_fp32, fp32)


def test_local_safetensors_and_pt_files(arch, bundled_files, tmp_path, shapes_model):
    from safetensors.torch import load_file

    st = tmp_path / "w.safetensors"
    shutil.copy(bundled_files[1], st)
    a = M.load_model(arch, pretrained=st, device="cpu")
    pt = tmp_path / "w.pt"
    torch.save({"state_dict": load_file(st)}, pt)
    b = M.load_model(arch, pretrained=str(pt), device="cpu")
    texts = ["a red circle", "a blue star"]
    np.testing.assert_allclose(a.encode_texts(texts), shapes_model.encode_texts(texts), atol=1e-6)
    np.testing.assert_allclose(b.encode_texts(texts), a.encode_texts(texts), atol=1e-6)
    assert a.key != b.key  # key follows the file checksum (different bytes)
    assert a.key != shapes_model.key  # and the name


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_objects_are_not_unpickled(arch, tmp_path, capsys):
    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": _Evil()}, bad)
    with pytest.raises(M.UnsafeCheckpointError, match="safetensors"):
        M.load_model(arch, pretrained=bad, device="cpu")
    assert "unpickled!" not in capsys.readouterr().out


def test_missing_file_and_wrong_pretrained_for_bundled(tmp_path):
    with pytest.raises(M.UnknownPretrainedError, match="no such file"):
        M.load_model("ViT-B-32", pretrained=str(tmp_path / "missing.safetensors"))
    with pytest.raises(M.UnknownPretrainedError, match="bundled model with its own weights"):
        M.load_model("clipviz-shapes", pretrained="openai")


def test_local_dir_hub_folder(bundled_files, tmp_path, shapes_model):
    folder = tmp_path / "my-model"
    folder.mkdir()
    for f in bundled_files:
        shutil.copy(f, folder / f.name)
    m = M.load_model(f"local-dir:{folder}", device="cpu")
    assert m.context_length == 16
    np.testing.assert_allclose(
        m.encode_texts(["a green hexagon"]),
        shapes_model.encode_texts(["a green hexagon"]),
        atol=1e-6,
    )


def test_list_models_starts_with_bundled():
    names = M.list_models()
    assert names[0] == ("clipviz-shapes", None)
    assert ("ViT-B-32", "openai") in names


# ---- hostile inputs (tests/bad_inputs/models/, see its README) ------------------------------
BAD = Path(__file__).parent / "bad_inputs" / "models"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache_with_config_only(hf_home: Path, bundled_config: Path) -> None:
    """huggingface_hub's real cache layout for ``org/repo``: the config cached, no weights."""
    repo = hf_home / "hub" / "models--org--repo"
    (repo / "snapshots" / HUB_COMMIT).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HUB_COMMIT)
    shutil.copy(bundled_config, repo / "snapshots" / HUB_COMMIT / "open_clip_config.json")


def test_hub_cache_without_weights_is_refused_not_random(bundled_files, tmp_path):
    # a fresh process: huggingface_hub reads HF_HOME when it is imported
    _hub_cache_with_config_only(tmp_path / "hf", bundled_files[0])
    code = (
        "import clipviz.models as M\n"
        "try:\n"
        "    M.load_model('hf-hub:org/repo', device='cpu')\n"
        "    print('LOADED')\n"
        "except M.ModelLoadError as err:\n"
        "    print(type(err).__name__, '|', err)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("WeightsUnavailableError |"), line
    assert "'hf-hub:org/repo'" in line and "HF_HOME" in line


@pytest.mark.parametrize(
    "file, words",
    [
        ("truncated.safetensors", "not a readable safetensors file"),
        ("not_safetensors.safetensors", "not a readable safetensors file"),
        ("text_width_changed.safetensors", "do not fit the 'clipviz-test-arch' architecture"),
        ("empty.safetensors", "do not fit the 'clipviz-test-arch' architecture"),
    ],
)
def test_bad_weight_files_raise_one_clear_error(arch, file, words):
    with pytest.raises(M.BadWeightsError, match=words) as err:
        M.load_model(arch, pretrained=BAD / file, device="cpu")
    assert isinstance(err.value, M.ModelLoadError) and str(BAD / file) in str(err.value)
    assert "\n" not in str(err.value)


def test_non_finite_weights_are_refused(arch, bundled_files, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(bundled_files[1])
    for bad_value, name in ((float("nan"), "nan"), (float("inf"), "inf")):
        broken = {k: v.clone() for k, v in state.items()}
        broken["text_projection"].fill_(bad_value)
        path = tmp_path / f"{name}.safetensors"
        save_file(broken, path)
        with pytest.raises(M.BadWeightsError, match=r"NaN or infinite.*'text_projection'"):
            M.load_model(arch, pretrained=path, device="cpu")


def test_local_dir_pickle_is_refused_without_torchs_advice(capsys):
    with pytest.raises(M.UnsafeCheckpointError, match="safetensors") as err:
        M.load_model(f"local-dir:{BAD / 'pickle_local_dir'}", device="cpu")
    assert err.value.__cause__ is None and err.value.__suppress_context__
    seen = str(err.value) + capsys.readouterr().out + capsys.readouterr().err
    assert "weights_only=False" not in seen and "payload ran" not in seen


def test_local_dir_that_is_not_a_model_folder(tmp_path):
    with pytest.raises(M.UnknownPretrainedError, match="no such folder"):
        M.load_model(f"local-dir:{tmp_path / 'missing'}", device="cpu")
    with pytest.raises(M.UnknownPretrainedError, match="no open_clip_config.json"):
        M.load_model(f"local-dir:{tmp_path}", device="cpu")


@pytest.mark.parametrize("name", [None, 3, "", "  "])
def test_load_model_without_a_name_says_what_to_pass(name):
    with pytest.raises(M.InvalidModelNameError, match=r"needs a model name.*'clipviz-shapes'"):
        M.load_model(name)


def test_every_user_error_is_a_model_load_error():
    with pytest.raises(M.DeviceError, match="unknown device"):
        M.load_model("clipviz-shapes", device="toaster")
    for cls in (M.BadWeightsError, M.DeviceError, M.InvalidModelNameError, M.PrecisionError,
                M.RandomWeightsError, M.UnknownModelError, M.UnknownPretrainedError,
                M.UnsafeCheckpointError, M.WeightsUnavailableError):  # fmt: skip
        assert issubclass(cls, M.ModelLoadError)
