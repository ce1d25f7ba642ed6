#!/usr/bin/env python3
"""Reads a run folder with TensorBoard's own loader (EventAccumulator, with its purge of the
steps a resumed process trained again) and prints, per scalar tag, how many steps it shows,
the first and last, and whether any step shows twice; exits 1 if one does, or if a scalar of
metrics.jsonl differs from what TensorBoard shows at that step.

    python3 -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard
    /tmp/tb/bin/python scripts/tensorboard-check.py RUN_DIR
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]
acc = EventAccumulator(run, size_guidance={"scalars": 0, "images": 0, "histograms": 0})
acc.Reload()
bad = False
for tag in sorted(acc.Tags()["scalars"]):
    steps = [e.step for e in acc.Scalars(tag)]
    twice = len(steps) != len(set(steps))
    bad |= twice
    if tag.startswith("loss/") or twice:
        print(f"{tag}: {len(steps)} steps, {steps[0]}..{steps[-1]}, twice: {twice}")
shown = {e.step: e.value for e in acc.Scalars("loss/critic")}
metrics = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
steps = [m["step"] for m in metrics if m["kind"] == "metrics"]
for m in metrics:
    if m["kind"] == "metrics" and abs(shown[m["step"]] - m["critic_loss"]) > 1e-6 * (1 + abs(m["critic_loss"])):
        print(f"step {m['step']}: TensorBoard shows {shown[m['step']]}, metrics.jsonl {m['critic_loss']}")
        bad = True
print(f"metrics.jsonl: {len(steps)} steps, TensorBoard: {len(shown)}; images: {acc.Tags()['images']}, "
      f"histograms: {acc.Tags()['histograms']}")
sys.exit(1 if bad or len(steps) != len(shown) else 0)
