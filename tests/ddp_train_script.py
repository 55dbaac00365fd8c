"""Run by the DDP tests under ``torchrun --nproc_per_node 2``: one training run; each rank
writes a hash of its final weights, its optimizer step count and every loss term it logged
(``loss_<term>`` lists, e.g. ``loss_lfu``) and how many monitor points it logged. An
optional fifth argument is a JSON object of more run options."""

import hashlib
import json
import os
import sys

import torch
from transformers import TrainerCallback

from forgetkit.train.config import TrainConfig
from forgetkit.train.run import train


class Report(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        digest = hashlib.sha256()
        for name, p in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(p.detach().cpu().float().numpy().tobytes())
        rank = int(os.environ["RANK"])
        report = {"rank": rank, "world": int(os.environ["WORLD_SIZE"]),
                  "global_step": state.global_step, "weights": digest.hexdigest()}
        for entry in state.log_history:
            for key, value in entry.items():
                if key.startswith("loss_"):
                    report.setdefault(key, []).append(value)
        report["monitor_points"] = sum("monitor/ft" in e for e in state.log_history)
        with open(os.path.join(sys.argv[3], f"rank{rank}.json"), "w") as fh:
            json.dump(report, fh)


def count_set_up_passes(reports: str) -> None:
    """Each rank that computes SEAT's base log-probs leaves a mark: it should be rank 0 only."""
    from forgetkit.train import kl_to_base

    compute = kl_to_base.CachedReference.compute.__func__

    def counted(cls, *args, **kwargs):
        open(os.path.join(reports, f"kl-cache-rank{os.environ['RANK']}"), "w").close()
        return compute(cls, *args, **kwargs)

    kl_to_base.CachedReference.compute = classmethod(counted)


if __name__ == "__main__":
    torch.manual_seed(0)
    count_set_up_passes(sys.argv[3])
    data, output, _, method = sys.argv[1:5]
    extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
    train(TrainConfig(model="tiny-random-llama", data=data, output=output, method=method,
                      epochs=2, batch_size=2, learning_rate=1e-3, save_strategy="no",
                      logging_steps=1, progress=False, **extra), callbacks=[Report()])
