"""Usage: SCRATCHGAN_DATA=DATA python bigan_loss_cpu.py SEED EPOCHS [simultaneous|alternating]

cmd_bigan_mnist's training loop (same model, seed, DeviceData order, Philox z) on the CPU,
no evaluation: per-epoch D/GE loss means, to set beside the H200 run's log."""
import os, pathlib, sys, time, importlib.util, numpy as np
ROOT = pathlib.Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "benchmarks"))
spec = importlib.util.spec_from_file_location("ex", ROOT / "benchmarks" / "encoders_experiments.py")
ex = importlib.util.module_from_spec(spec); spec.loader.exec_module(ex)
from scratchgan.models import get_model
from scratchgan.data import load_dataset
from scratchgan.runtime import StepRunner
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
updates = sys.argv[3] if len(sys.argv) > 3 else "simultaneous"
xtr, ytr = load_dataset("mnist", (0.0, 1.0), data_dir=os.environ.get("SCRATCHGAN_DATA"), split="train")
batch = 128; spe = len(xtr) // batch
hyper = dict(steps_per_epoch=spe, constant_epochs=200, decay_epochs=200, updates=updates)
model = get_model("bigan")((1, 28, 28), device="cpu", rng=seed, **hyper)
data = ex.DeviceData(xtr, model, batch, seed)
runner = StepRunner(model)
for e in range(1, epochs + 1):
    t = time.time(); acc = {"loss_d": 0.0, "loss_ge": 0.0}; fine = []
    for i in range(spe):
        logs = runner(data.next())
        for k in acc: acc[k] += float(logs[k])
        if i % 47 == 46: fine.append(float(logs["loss_d"]))
    print(f"epoch {e}: loss_d {acc['loss_d']/spe:.4g} loss_ge {acc['loss_ge']/spe:.4g} ({time.time()-t:.0f}s) d-samples " + " ".join("%.3f" % v for v in fine), flush=True)
