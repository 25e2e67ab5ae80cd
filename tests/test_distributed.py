"""Data-parallel training on the CPU with a thread communicator (CI has no GPU): the
collectives, the sharding, the equivalence of a W-rank step (per-rank batch B) with the
1-process step (batch W·B), the synchronised BatchNorm, rank 0 as the only writer, the
checkpoint's single-process resume, the launcher's failure handling. The gpu test at the end
runs the same equivalence cases over NCCL on two GPUs."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from scratchgan import nn
from scratchgan.data.batches import BatchIterator
from scratchgan.distributed.replay import DrawRecorder, replay_slices
from scratchgan.distributed import (CommunicatorError, LocalGroup, convert_sync_batchnorm,
                                    data_parallel, env_info, rank_seed)
from scratchgan.distributed.launch import launch
from scratchgan.models import get_model
from scratchgan.train import Trainer



# ----------------------------------------------------------------------------- collectives
def test_local_group_collectives():
    def body(comm):
        a = np.full(3, comm.rank + 1.0, dtype=np.float32)
        comm.all_reduce_sum(a)
        b = np.full(2, comm.rank + 1.0)
        comm.all_reduce_mean(b)
        c = np.arange(4.0) * (comm.rank + 1)
        comm.broadcast(c, root=2)
        comm.barrier()
        return a, b, c
    for a, b, c in LocalGroup(3).run(body):
        assert a.tolist() == [6.0] * 3 and b.tolist() == [2.0, 2.0]
        assert c.tolist() == [0.0, 3.0, 6.0, 9.0]


def test_a_failed_rank_stops_the_others_with_an_error():
    def body(comm):
        if comm.rank == 1:
            raise RuntimeError("rank 1 broke")
        comm.all_reduce_sum(np.zeros(2))
    t0 = time.time()
    with pytest.raises(RuntimeError, match="rank 1 broke"):
        LocalGroup(2, timeout=30).run(body)
    assert time.time() - t0 < 10          # the barrier was aborted, nobody waited 30 s

    def late(comm):
        if comm.rank == 0:
            comm.all_reduce_sum(np.zeros(2))
    with pytest.raises(CommunicatorError, match="did not complete"):
        LocalGroup(2, timeout=0.5).run(late)


def test_env_info_reads_launchers():
    assert env_info({}) is None
    e = env_info({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_PORT": "1234"})
    assert (e["rank"], e["world_size"], e["local_rank"], e["port"]) == (1, 4, 1, 1234)
    e = env_info({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3",
                  "OMPI_COMM_WORLD_LOCAL_RANK": "0"})
    assert (e["rank"], e["world_size"], e["local_rank"]) == (2, 3, 0)
    with pytest.raises(ValueError, match="outside"):
        env_info({"RANK": "3", "WORLD_SIZE": "2"})


# ----------------------------------------------------------------------------- sharding
def test_shards_are_disjoint_and_make_the_global_batch():
    x = np.arange(50)[:, None]
    one = BatchIterator(x, batch_size=8, rng=3)
    ranks = [BatchIterator(x, batch_size=4, rng=3, rank=r, world_size=2) for r in range(2)]
    assert len(one) == len(ranks[0]) == 6
    for _ in range(len(one) * 2 + 1):                # across an epoch boundary
        g = one.next_batch()[0][:, 0]
        parts = [it.next_batch()[0][:, 0] for it in ranks]
        assert not set(parts[0]) & set(parts[1])
        np.testing.assert_array_equal(np.concatenate(parts), g)
    with pytest.raises(ValueError, match="rank"):
        BatchIterator(x, batch_size=4, rank=2, world_size=2)


# ----------------------------------------------------------------------------- equivalence
CASES = {
    "gan": ("gan", (1, 6, 6), dict(g_hidden=8, d_units=6, d_pieces=3, z_dim=5), (0, 1), 16),
    "wgan": ("wgan", (2,), dict(mlp_hidden=8, mlp_layers=2, z_dim=3), None, 16),
    "dcgan_sync_bn": ("dcgan", (1, 28, 28), dict(ngf=2, ndf=2, z_dim=4), (-1, 1), 16),
}


def build(case):
    name, shape, hyper, _, _ = CASES[case]
    return get_model(name)(shape, rng=5, dtype=np.float64, **hyper)


def data(case, model, steps=3):
    _, shape, _, rng_range, B = CASES[case]
    g = np.random.default_rng(9)
    out = []
    for _ in range(steps):
        n = B * model.batches_per_step()
        x = g.normal(size=(n,) + shape) if rng_range is None else g.uniform(*rng_range, (n,) + shape)
        out.append(x)
    return out


def split_step_batch(x, k, rank, world):
    """Rank ``rank``'s part of a step's data: each of the k stacked minibatches halved."""
    parts = np.split(x, k)
    return np.concatenate([np.split(p, world)[rank] for p in parts])


@pytest.mark.parametrize("world", [2, 4, 8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_n_rank_step_equals_one_process_step(case, world):
    """From the same weights, N ranks with per-rank batch B/N reach the parameters of one
    process with batch B after 3 steps (float64; the DCGAN with synchronised BatchNorm; at
    N = 8 each rank holds two examples of each minibatch)."""
    ref = build(case)
    rec = DrawRecorder(ref)
    batches = data(case, ref)
    for x in batches:
        ref.train_step(x)
    calls = rec.calls

    def body(comm):
        m = build(case)
        if case.endswith("sync_bn"):
            for net in m.networks().values():
                assert convert_sync_batchnorm(net, comm) > 0
        data_parallel(m, comm)
        replay_slices(m, calls, comm.rank, comm.world_size)
        k = m.batches_per_step()
        for x in batches:
            m.train_step(split_step_batch(x, k, comm.rank, comm.world_size))
        return {f"{n}.{k}": v.copy() for n, net in m.networks().items()
                for k, v in net.state_dict().items()}
    results = LocalGroup(world).run(body)
    want = {f"{n}.{k}": v for n, net in ref.networks().items() for k, v in net.state_dict().items()}
    for key, v in want.items():
        for r in range(world):
            np.testing.assert_allclose(results[r][key], v, rtol=1e-9, atol=1e-12,
                                       err_msg=f"rank {r} {key}")


def test_without_sync_batchnorm_the_steps_differ():
    """The control: per-rank BatchNorm statistics (the default) do not give the 1-process
    step, so the equivalence above is not automatic."""
    case = "dcgan_sync_bn"
    ref = build(case)
    rec = DrawRecorder(ref)
    batches = data(case, ref, steps=1)
    ref.train_step(batches[0])

    def body(comm):
        m = build(case)
        data_parallel(m, comm)
        replay_slices(m, rec.calls, comm.rank, comm.world_size)
        m.train_step(split_step_batch(batches[0], 1, comm.rank, 2))
        return m.D.state_dict()
    got = LocalGroup(2).run(body)[0]
    worst = max(np.abs(got[k] - v).max() for k, v in ref.D.state_dict().items())
    assert worst > 1e-6


def test_sync_batchnorm_layer_equals_full_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3, 4, 4))
    dy = rng.normal(size=x.shape)
    full = nn.BatchNorm2d(3).astype(np.float64)
    full.weight.data[...] = [0.5, 1.5, -1.0]
    y = full(x)
    dx = full.backward(dy * 0.5)          # L = mean over the two halves' losses

    def body(comm):
        bn = nn.BatchNorm2d(3).astype(np.float64)
        bn.weight.data[...] = [0.5, 1.5, -1.0]
        convert_sync_batchnorm(bn, comm)
        s = slice(4 * comm.rank, 4 * comm.rank + 4)
        out = bn(x[s])
        d = bn.backward(dy[s])
        g = np.concatenate([bn.weight.grad, bn.bias.grad])
        comm.all_reduce_mean(g)
        return out, d, g, bn.running_mean.copy(), bn.running_var.copy()
    res = LocalGroup(2).run(body)
    np.testing.assert_allclose(np.concatenate([r[0] for r in res]), y, rtol=1e-12, atol=1e-12)
    # each rank's dx is W dL/dx (see syncbn.py); the parameter gradients are means over ranks
    np.testing.assert_allclose(np.concatenate([r[1] for r in res]) / 2, dx, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(res[0][2], np.concatenate([full.weight.grad, full.bias.grad]),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res[0][3], full.running_mean, rtol=1e-12)
    np.testing.assert_allclose(res[0][4], full.running_var, rtol=1e-12)


# ----------------------------------------------------------------------------- the trainer
def test_trainer_two_ranks_rank0_writes_and_the_checkpoint_resumes_alone(tmp_path):
    x = np.random.default_rng(1).normal(size=(64, 2)).astype(np.float32)

    def body(comm):
        m = get_model("wgan")((2,), rng=3, mlp_hidden=8, mlp_layers=2, z_dim=3)
        out = tmp_path / f"run{comm.rank}"
        Trainer(m, x, batch_size=4, steps=4, out_dir=out, progress=False, comm=comm,
                config={"model": "wgan"}).fit()
        return {k: v.copy() for k, v in m.G.state_dict().items()}, m.random.seed
    (g0, s0), (g1, s1) = LocalGroup(2).run(body)
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])    # the ranks agree
    assert s1 == rank_seed(s0, 1) and s1 != s0         # own noise streams
    assert (tmp_path / "run0/last.ckpt.npz").is_file()
    assert (tmp_path / "run0/metrics.jsonl").read_text().strip()
    assert json.loads((tmp_path / "run0/config.json").read_text())["world_size"] == 2
    assert not (tmp_path / "run1").exists()            # rank 1 wrote nothing
    m = get_model("wgan")((2,), rng=99, mlp_hidden=8, mlp_layers=2, z_dim=3)
    tr = Trainer(m, x, batch_size=4, steps=5, out_dir=tmp_path / "run0", progress=False,
                 resume=True)
    tr.fit()                                           # a single process continues the run
    assert tr.resumed_from["step"] == 4 and m.step == 5


# ----------------------------------------------------------------------------- launcher
def test_launcher_runs_every_rank_and_stops_the_rest_on_failure(tmp_path, capsys):
    ok = [sys.executable, "-c", "import os; open(os.environ['OUT'] + os.environ['RANK'], 'w')"]
    import os
    os.environ["OUT"] = str(tmp_path / "r")
    try:
        assert launch(ok, 3) == 0
    finally:
        del os.environ["OUT"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0", "r1", "r2"]
    bad = [sys.executable, "-c",
           "import os, sys, time\nif os.environ['RANK'] == '1': sys.exit(3)\ntime.sleep(60)"]
    t0 = time.time()
    assert launch(bad, 2, grace=2.0, log=lambda *a, **k: None) == 3
    assert time.time() - t0 < 20


def test_launcher_cli_errors():
    r = subprocess.run([sys.executable, "-m", "scratchgan.distributed.launch", "--nproc", "2"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no command" in r.stderr


def test_cli_gpus_errors(capsys):
    from scratchgan import cli
    for argv, msg in ((["train", "gan", "--gpus", "2", "--dry-run"], "needs --device cuda"),
                      (["train", "gan", "--sync-bn", "--dry-run"], "needs --gpus N")):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err


# one rank of the NCCL equivalence check: the CPU cases above on the GPU, each rank writing
# the worst relative difference of any state entry from the one-process run
NCCL_RANK = """
import json, sys
import cupy as cp
import numpy as np
from scratchgan.distributed import convert_sync_batchnorm, data_parallel, init_from_env
from scratchgan.distributed.replay import DrawRecorder, replay_slices
from scratchgan.models import get_model

cases, out = json.loads(sys.argv[1]), sys.argv[2]
comm = init_from_env("cuda")
worst = {}
for case, (name, shape, hyper, rr, B) in cases.items():
    shape = tuple(shape)
    build = lambda: get_model(name)(shape, rng=5, device="cuda", dtype=np.float64, **hyper)
    ref = build()
    rec = DrawRecorder(ref)
    g = np.random.default_rng(9)
    n = B * ref.batches_per_step()
    batches = [g.normal(size=(n,) + shape) if rr is None else g.uniform(*rr, (n,) + shape)
               for _ in range(3)]
    for x in batches:
        ref.train_step(cp.asarray(x))
    m = build()
    if case.endswith("sync_bn"):
        for net in m.networks().values():
            convert_sync_batchnorm(net, comm)
    data_parallel(m, comm)
    replay_slices(m, rec.calls, comm.rank, comm.world_size)
    k = m.batches_per_step()
    for x in batches:
        mine = np.concatenate([np.split(p, comm.world_size)[comm.rank] for p in np.split(x, k)])
        m.train_step(cp.asarray(mine))
    w = 0.0
    for net_name, net in m.networks().items():
        want = ref.networks()[net_name].state_dict()
        for key, v in net.state_dict().items():
            d = float(np.linalg.norm(v - want[key]) / max(np.linalg.norm(want[key]), 1e-30))
            w = max(w, d)
    worst[case] = w
with open(f"{out}/rank{comm.rank}.json", "w") as f:
    json.dump(worst, f)
"""


@pytest.mark.gpu
def test_gpu_two_rank_equivalence_over_nccl(tmp_path):
    """On a machine with 2 GPUs: the equivalence cases above over NCCL (float64, the same bound
    as on the CPU), each rank a process started by the launcher."""
    import cupy as cp
    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs 2 GPUs")
    prog = tmp_path / "rank.py"
    prog.write_text(NCCL_RANK)
    r = subprocess.run([sys.executable, "-m", "scratchgan.distributed.launch", "--nproc", "2",
                        "--", sys.executable, str(prog), json.dumps(CASES), str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for rank in range(2):
        worst = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert sorted(worst) == sorted(CASES)
        for case, w in worst.items():
            assert w < 1e-9, (rank, case, w)


def test_replay_slices_hands_out_each_ranks_rows_and_refuses_a_diverging_draw():
    from types import SimpleNamespace
    g = np.random.default_rng(0)

    def stream():
        return SimpleNamespace(uniform=lambda shape: g.uniform(size=shape),
                               normal=lambda shape: g.normal(size=shape),
                               random=lambda shape: g.random(size=shape),
                               integers=lambda high, shape: g.integers(high, size=shape))
    src = SimpleNamespace(random=stream())
    rec = DrawRecorder(src)
    a = src.random.normal((4, 2))
    b = src.random.uniform((4,))
    assert [n for n, _ in rec.calls] == ["normal", "uniform"]
    dst = SimpleNamespace(random=stream())
    replay_slices(dst, rec.calls, rank=1, world=2)
    np.testing.assert_array_equal(dst.random.normal((2, 2)), a[2:])
    with pytest.raises(RuntimeError, match="expected a 'uniform' draw"):
        dst.random.normal((2,))
    dst2 = SimpleNamespace(random=stream())
    replay_slices(dst2, rec.calls, rank=0, world=2)
    dst2.random.normal((2, 2))
    np.testing.assert_array_equal(dst2.random.uniform((2,)), b[:2])
    with pytest.raises(RuntimeError, match="past the end"):
        dst2.random.uniform((2,))
    with pytest.raises(ValueError, match="rank"):
        replay_slices(dst2, rec.calls, rank=2, world=2)
