"""Usage: SCRATCHGAN_DATA=DATA python bigan_loss_cpu.py SEED EPOCHS [simultaneous|alternating]

The training loop of the H200 runs these logs are compared with (same model, seed, data order
and Philox z) on the CPU, no evaluation: per-epoch D/GE loss means, to set beside the H200
run's log. The data order is the one those runs used (a permutation per epoch from
default_rng([seed, 11]), the last incomplete minibatch dropped), written out here."""
import os, time, numpy as np


class DeviceData:
    def __init__(self, x, model, batch, seed):
        self.x = model.to_model(np.ascontiguousarray(x))
        self.n, self.batch, self.model = len(x), int(batch), model
        self.rng = np.random.default_rng([seed, 11])
        self.perm, self.pos = self.rng.permutation(self.n), 0

    def next(self):
        if self.pos + self.batch > self.n:
            self.perm, self.pos = self.rng.permutation(self.n), 0
        idx = self.perm[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return self.x[self.model.to_model(idx, dtype=False)]


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
data = DeviceData(xtr, model, batch, seed)
runner = StepRunner(model)
for e in range(1, epochs + 1):
    t = time.time(); acc = {"loss_d": 0.0, "loss_ge": 0.0}; fine = []
    for i in range(spe):
        logs = runner(data.next())
        for k in acc: acc[k] += float(logs[k])
        if i % 47 == 46: fine.append(float(logs["loss_d"]))
    print(f"epoch {e}: loss_d {acc['loss_d']/spe:.4g} loss_ge {acc['loss_ge']/spe:.4g} ({time.time()-t:.0f}s) d-samples " + " ".join("%.3f" % v for v in fine), flush=True)
