"""Export to PyTorch (``scratchgan.interop``): for every model whose networks have a PyTorch
twin, the exported generator rebuilt in PyTorch makes the same samples from the same noise
(1e-10 in float64, 1e-5 in float32) in both formats, and the export imports back to the
identical checkpoint state. Errors are raised before anything is written."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require_torch

torch = require_torch()

from scratchgan import interop  # noqa: E402
from scratchgan.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from scratchgan.cli import main as cli_main  # noqa: E402
from scratchgan.models import get_model  # noqa: E402

M = 8
# case -> (model, data_shape, hyperparameters, data range (None: standard normal))
CASES = {
    "gan": ("gan", (1, 8, 8), dict(arch="paper", g_hidden=24, d_units=12, d_pieces=5, z_dim=10),
            (0.0, 1.0)),
    "gan_toy": ("gan", (2,), dict(arch="toy", toy_hidden=16, toy_units=8, z_dim=4), None),
    "dcgan": ("dcgan", (1, 28, 28), dict(ngf=4, ndf=4, z_dim=8), (-1.0, 1.0)),
    "cgan": ("cgan", (1, 8, 8), dict(z_dim=10, g_hidden_z=8, g_hidden_y=12, g_hidden=24,
                                     d_units_x=12, d_units_y=6, d_units=10), (0.0, 1.0)),
    "infogan": ("infogan", (1, 28, 28), dict(noise_dim=8, g_fc=16, g_channels=8, g_conv=4,
                                             d_conv1=4, d_conv2=8, d_fc=16, q_fc=8), (0.0, 1.0)),
    "wgan": ("wgan", (1, 28, 28), dict(ngf=4, ndf=4, z_dim=8), (-1.0, 1.0)),
    "wgan_mlp": ("wgan", (2,), dict(mlp_hidden=16, mlp_layers=3, z_dim=4), None),
    "wgan_gp": ("wgan-gp", (1, 28, 28), dict(dim=4, z_dim=8), (0.0, 1.0)),
    "vae": ("vae", (1, 28, 28), dict(hidden=24, latent_dim=4), (0.0, 1.0)),
    "aae": ("aae", (1, 28, 28), dict(hidden=24, d_hidden=16, code_dim=4), (0.0, 1.0)),
    "betavae": ("betavae", (1, 28, 28), dict(enc_hidden=24, dec_hidden=16, latent_dim=4),
                (0.0, 1.0)),
}
TOL = {"float64": 1e-10, "float32": 1e-5}


def make_run(tmp_path, case, dtype="float64", steps=2):
    """A run folder holding a checkpoint as 'scratchgan train' writes it, after ``steps``
    training steps (so BatchNorm statistics and optimizer slots are not at their start)."""
    name, shape, hyper, rng_range = CASES[case]
    model = get_model(name)(shape, rng=0, dtype=np.dtype(dtype), **hyper)
    g = np.random.default_rng(1)
    for _ in range(steps):
        n = M * model.batches_per_step()
        x = (g.standard_normal((n,) + shape) if rng_range is None
             else g.uniform(*rng_range, (n,) + shape)).astype(dtype)
        y = g.integers(0, 10, n)
        model.train_step(x, y)
    config = {"model": name, "dataset": "test", "data_shape": list(shape), "num_classes": 10,
              "hyper": hyper, "dtype": dtype, "seed": 0, "batch_size": M}
    run = tmp_path / f"run-{case}-{dtype}"
    save_checkpoint(run / "last.ckpt.npz", {"config": config, "model": model.state_dict(),
                                            "trainer": {"step": steps, "seed": 0}},
                    keep_previous=True)
    return run, model


def assert_same(a, b, where="state"):
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs " \
                                                          f"{b.dtype}{b.shape}"
        assert np.array_equal(a, b, equal_nan=True), where
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} vs {b!r}"


@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
@pytest.mark.parametrize("case", list(CASES))
def test_exported_generator_matches_in_float64(tmp_path, case, fmt):
    pytest.importorskip("safetensors") if fmt == "safetensors" else None
    run, model = make_run(tmp_path, case)
    path = interop.export_run(run, format=fmt)
    assert path == run / ("model" + interop.FORMATS[fmt])
    noise = model.sample_noise(6, rng=np.random.default_rng(3))
    ours = np.asarray(model.generate(noise))
    theirs = interop.torch_generate(path, noise)
    assert theirs.dtype == torch.float64
    err = np.abs(theirs.numpy() - ours).max() / max(np.abs(ours).max(), 1e-300)
    assert err < TOL["float64"], f"{case}: relative difference {err:.3g}"
    assert_same(interop.import_back(path), load_checkpoint(run / "last.ckpt.npz"))


@pytest.mark.parametrize("case", ["gan", "dcgan", "cgan", "infogan", "vae", "aae"])
def test_exported_generator_matches_in_float32(tmp_path, case):
    run, model = make_run(tmp_path, case, dtype="float32")
    path = interop.export_run(run, format="torch")
    mods = interop.load_into_torch(path)
    assert next(iter(mods[interop.GENERATORS[model.name]["network"]].parameters())).dtype \
        == torch.float32
    noise = model.sample_noise(6, rng=np.random.default_rng(3))
    ours = np.asarray(model.generate(noise))
    theirs = interop.torch_generate(path, noise, mods).numpy()
    assert np.abs(theirs - ours).max() < TOL["float32"] * max(1.0, np.abs(ours).max())
    assert_same(interop.import_back(path), load_checkpoint(run / "last.ckpt.npz"))


def test_safetensors_file_is_plain_safetensors(tmp_path):
    """Any safetensors reader gets the networks under PyTorch's names, and the manifest."""
    st = pytest.importorskip("safetensors.torch")
    run, model = make_run(tmp_path, "dcgan")
    path = interop.export_run(run)
    tensors = st.load_file(str(path))
    g = interop.load_into_torch(path)["G"]
    missing, unexpected = g.load_state_dict({k[2:]: v for k, v in tensors.items()
                                             if k.startswith("G.")}, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        manifest = json.loads(f.metadata()["scratchgan"])
    assert manifest["model"] == "dcgan" and manifest["hyper"]["ngf"] == 4
    assert manifest["networks"]["G"]["layout"]["type"] == "Sequential"
    assert tensors["G.1.weight"].dtype == torch.float64


def test_comparison_can_fail(tmp_path):
    """A changed weight in the export shows up in the samples."""
    run, model = make_run(tmp_path, "vae")
    path = interop.export_run(run, format="torch")
    mods = interop.load_into_torch(path)
    with torch.no_grad():
        mods["decoder"][0].weight[0, 0] += 1e-6
    noise = model.sample_noise(6, rng=np.random.default_rng(3))
    diff = np.abs(interop.torch_generate(path, noise, mods).numpy() -
                  np.asarray(model.generate(noise))).max()
    assert diff > 1e-10


# ----------------------------------------------------------------------------- errors
def _files(d):
    return sorted(p.name for p in d.iterdir())


def test_folder_without_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(interop.ExportError, match="holds no checkpoint.*last.ckpt.npz"):
        interop.export_run(tmp_path)
    with pytest.raises(interop.ExportError, match="run folder not found"):
        interop.export_run(tmp_path / "nope")
    assert _files(tmp_path) == ["config.json"]


def test_unknown_format(tmp_path):
    run, _ = make_run(tmp_path, "gan_toy", steps=0)
    before = _files(run)
    with pytest.raises(interop.ExportError, match="unknown export format 'onnx'; expected "
                                                  "one of safetensors, torch"):
        interop.export_run(run, format="onnx")
    assert _files(run) == before


def test_existing_out_file_is_kept(tmp_path):
    run, _ = make_run(tmp_path, "gan_toy", steps=0)
    out = tmp_path / "x.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(interop.ExportError, match="already exists"):
        interop.export_run(run, format="torch", out=out)
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("x.pt")) == ["x.pt"]


def test_missing_safetensors(tmp_path, monkeypatch):
    import sys
    run, _ = make_run(tmp_path, "gan_toy", steps=0)
    before = _files(run)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(interop.ExportError, match="needs the safetensors package.*pip install"):
        interop.export_run(run)
    assert _files(run) == before


def test_main(tmp_path, capsys):
    run, _ = make_run(tmp_path, "gan_toy", steps=0)
    assert interop.main([str(run), "--format", "torch"]) == 0
    assert (run / "model.pt").is_file()
    assert "model.pt" in capsys.readouterr().out
    assert interop.main([str(run), "--format", "torch"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert interop.main([str(tmp_path / "empty"), "--format", "torch"]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_export_mode_follows_umask(tmp_path):
    import os
    run, _ = make_run(tmp_path, "gan_toy", steps=0)
    old = os.umask(0o022)
    try:
        path = interop.export_run(run, format="torch")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_unreadable_export(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(interop.ExportError, match="unreadable safetensors file"):
        interop.import_back(bad)


def test_model_without_a_torch_builder_still_exports_and_imports_back(tmp_path):
    """pggan's progressive networks have no PyTorch builder: the export is complete all the
    same (import_back is identical) and load_into_torch names the layer it cannot build."""
    cls = get_model("pggan")
    model = cls((1, 32, 32), rng=0)
    config = {"model": "pggan", "data_shape": [1, 32, 32], "num_classes": 10, "hyper": {},
              "dtype": "float32"}
    run = tmp_path / "run"
    save_checkpoint(run / "last.ckpt.npz", {"config": config, "model": model.state_dict()})
    path = interop.export_run(run)
    assert_same(interop.import_back(path), load_checkpoint(run / "last.ckpt.npz"))
    with pytest.raises(interop.ExportError, match=r"^G: layer type \w+ has no PyTorch builder"):
        interop.load_into_torch(path)


def test_export_is_a_subcommand_of_the_main_cli(tmp_path, capsys):
    """``scratchgan export`` runs the same code as ``scratchgan.interop.main``."""
    assert cli_main(["export", str(tmp_path / "no-run")]) == 2
    assert "scratchgan export: error:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
