"""Run by test_lfu_ddp.py under ``torchrun --nproc_per_node 2``: one LfU run; each rank writes
a hash of its final weights, its step count and the consistency values it logged."""

import hashlib
import json
import os
import sys

import torch
from transformers import TrainerCallback

from forgetkit.config import TrainConfig
from forgetkit.train.run import train


class Report(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        digest = hashlib.sha256()
        for name, p in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(p.detach().cpu().float().numpy().tobytes())
        rank = int(os.environ["RANK"])
        report = {"rank": rank, "world": int(os.environ["WORLD_SIZE"]),
                  "global_step": state.global_step, "weights": digest.hexdigest(),
                  "loss_lfu": [h["loss_lfu"] for h in state.log_history if "loss_lfu" in h]}
        with open(os.path.join(sys.argv[3], f"rank{rank}.json"), "w") as fh:
            json.dump(report, fh)


if __name__ == "__main__":
    data, output, _, method = sys.argv[1:5]
    torch.manual_seed(0)
    train(TrainConfig(model="tiny-random-llama", data=data, output=output, method=method,
                      epochs=2, batch_size=2, learning_rate=1e-3, save_strategy="no",
                      logging_steps=1, progress=False), callbacks=[Report()])
