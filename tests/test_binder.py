"""The Binder files: quick checks that they parse and name the right things, and (opt-in, slow)
a fresh virtual environment built from them alone that runs postBuild and the quickstart.

The slow test runs with ``CLIPVIZ_TEST_BINDER=1``: it installs torch and everything else into a
new venv (several minutes on 2 cores), which is too long for every test run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
QUICKSTART = "notebooks/01_quickstart.ipynb"


def _requirement_lines() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln.split(" #")[0].strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_requirements_use_cpu_torch_and_install_clipviz():
    lines = _requirement_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines, "CPU-only torch keeps the Binder image small"
    names, local = set(), []
    for line in lines:
        if line.startswith("--"):
            continue
        if line in (".", "-e .", "-e ./") or line.startswith(("-e .[", ".[")):
            local.append(line)
            continue
        try:
            names.add(Requirement(line).name.lower())
        except InvalidRequirement as err:
            pytest.fail(f"binder/requirements.txt line {line!r} does not parse: {err}")
    assert {"torch", "torchvision"} <= names
    assert local, "the repository itself (clipviz and its dependencies) must be installed"


def test_runtime_python_satisfies_pyproject():
    import tomllib

    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"runtime.txt must read like 'python-3.11', got {runtime!r}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(match.group(1) + ".0")


def test_postbuild_is_valid_bash_and_calls_the_real_cli():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "repo2docker runs postBuild only when it is executable"
    text = post.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    subprocess.run(["bash", "-n", str(post)], check=True, timeout=30)
    assert 'create_model_and_transforms("ViT-B-32", pretrained="openai")' in text
    commands = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("clipviz embed")]
    assert len(commands) >= 1
    from clipviz.cli import _parser

    for command in commands:  # every flag postBuild passes exists in the CLI
        argv = shlex.split(command.rstrip("\\").strip())[1:]
        args = _parser().parse_args(argv)
        assert args.command == "embed"
    assert any("--sample shapes" in c and "clipviz-shapes" in c for c in commands)


def test_start_adds_config_path_and_execs_the_command():
    start = BINDER / "start"
    assert os.access(start, os.X_OK)
    out = subprocess.run(
        [str(start), sys.executable, "-c", "import os; print(os.environ['JUPYTER_CONFIG_PATH'])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out.split(os.pathsep)[0] == str(BINDER / "jupyter")
    config = json.loads((BINDER / "jupyter" / "jupyter_server_config.json").read_text())
    for app in ("ServerApp", "LabApp"):
        url = config[app]["default_url"]
        assert url == f"/lab/tree/{QUICKSTART}"
    assert (REPO / QUICKSTART).is_file(), f"{QUICKSTART} must exist for the Binder landing page"


def test_postbuild_sample_is_the_quickstarts_images():
    """``clipviz embed --sample shapes`` must embed exactly the images the quickstart makes."""
    from clipviz.cli import SHAPES_N, SHAPES_SEED

    cells = json.loads((REPO / QUICKSTART).read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    calls = re.findall(r"datasets\.shapes\((\d+),\s*seed=(\d+)\)", code)
    assert calls, "the quickstart no longer calls clipviz.datasets.shapes(N, seed=S)"
    assert (int(calls[0][0]), int(calls[0][1])) == (SHAPES_N, SHAPES_SEED), (
        "update SHAPES_N/SHAPES_SEED in clipviz/cli.py to the quickstart's shapes(...) call"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # keep the 302 so its Location can be read
        return None


@pytest.mark.slow
def test_jupyterlab_started_through_start_lands_on_quickstart(tmp_path):
    port, token = _free_port(), "binder-test"
    cmd = [str(BINDER / "start"), sys.executable, "-m", "jupyterlab", "--no-browser"]
    cmd += [f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]
    cmd += [f"--ServerApp.root_dir={REPO}", "--ServerApp.port_retries=0", "--allow-root"]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path))
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        deadline, location = time.monotonic() + 60, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                opener.open(f"http://127.0.0.1:{port}/?token={token}", timeout=5)
            except urllib.error.HTTPError as err:
                if err.code in (301, 302, 303, 307):
                    location = err.headers["Location"]
                    break
            except OSError:
                time.sleep(0.5)
        assert location is not None, (tmp_path / "lab.log").read_text()[-3000:]
        assert location.split("?")[0].endswith(f"/lab/tree/{QUICKSTART}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ------------------------------------------------------------------------------ slow, opt-in
def _cpu_index_reachable() -> bool:
    try:
        with urllib.request.urlopen(CPU_INDEX + "/", timeout=5):
            return True
    except OSError:
        return False


def _run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    print(f"[{time.monotonic() - start:6.1f} s] {' '.join(cmd[:4])} ...")
    if proc.returncode != 0:
        pytest.fail(
            f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _cache_entries(root: Path) -> int:
    import clipviz
    from clipviz.engine import EmbeddingCache

    info = clipviz.load_model("clipviz-shapes", device="cpu").info
    return len(EmbeddingCache(root, info.key, info.dim).load())


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CLIPVIZ_TEST_BINDER") != "1",
    reason="builds a fresh venv with torch (~5 min on 2 cores); set CLIPVIZ_TEST_BINDER=1",
)
def test_fresh_venv_from_binder_files_runs_postbuild_and_quickstart(tmp_path):
    venv = tmp_path / "venv"
    t0 = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], 120)
    py, bindir = venv / "bin" / "python", venv / "bin"

    requirements = BINDER / "requirements.txt"
    if not _cpu_index_reachable():
        # As on this machine: the PyTorch index is out of reach, so torch comes from the default
        # index (the full CUDA-capable wheel). The rest of the file is used unchanged.
        print(f"NOTE: {CPU_INDEX} unreachable; installing torch from the default index instead")
        requirements = tmp_path / "requirements.txt"
        kept = [
            ln
            for ln in (BINDER / "requirements.txt").read_text().splitlines()
            if CPU_INDEX not in ln
        ]
        requirements.write_text("\n".join(kept) + "\n")
    _run([str(py), "-m", "pip", "install", "-q", "-r", str(requirements)], 1500, cwd=REPO)
    # repo2docker's base environment brings the kernel and nbclient; a bare venv does not.
    _run([str(py), "-m", "pip", "install", "-q", "ipykernel", "nbclient"], 600)
    t_install = time.monotonic() - t0

    env = dict(
        os.environ,
        PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",  # offline here: postBuild must survive the failed download
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        HOME=str(tmp_path / "home"),
        VIRTUAL_ENV=str(venv),
    )
    (tmp_path / "home").mkdir()
    post = _run(["bash", str(BINDER / "postBuild")], 900, cwd=REPO, env=env)
    assert "could not download the ViT-B-32 weights" in post.stderr
    assert "postBuild: done" in post.stdout
    assert any((tmp_path / "cache").rglob("*")), "postBuild left no embeddings in the cache"

    work = tmp_path / "nb"
    shutil.copytree(REPO / "notebooks", work)
    _run(
        [str(bindir / "jupyter"), "execute", str(work / Path(QUICKSTART).name)],
        900,
        env=env,
        cwd=work,
    )
    print(f"binder venv: install {t_install:.0f} s, total {time.monotonic() - t0:.0f} s")
