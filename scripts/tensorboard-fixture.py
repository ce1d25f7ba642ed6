#!/usr/bin/env python3
"""Writes tests/data/tensorboard-python.tfevents with TensorBoard's own writer: one record of
each kind wgangp-tui writes (scalars, a session log, a histogram, an image), at fixed wall times
(the file-version record TensorBoard adds carries the time it was made). tests/tensorboard.rs
reads it with wgangp-tui's reader and re-encodes every record byte for byte.

    python3 -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard
    /tmp/tb/bin/python scripts/tensorboard-fixture.py /tmp/tb-out
    cp /tmp/tb-out/events.out.tfevents.* tests/data/tensorboard-python.tfevents
"""
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary, HistogramProto
import glob, os, shutil, sys
out = sys.argv[1] if len(sys.argv) > 1 else "out"
shutil.rmtree(out, ignore_errors=True)
w = EventFileWriter(out)
w.add_event(Event(wall_time=1765000000.25, step=3, summary=Summary(value=[
    Summary.Value(tag="loss/critic", simple_value=-0.75),
    Summary.Value(tag="penalty", simple_value=1.5)])))
w.add_event(Event(wall_time=1765000001.5, step=4, session_log=SessionLog(status=SessionLog.START)))
h = HistogramProto(min=-1.0, max=2.0, num=3, sum=1.5, sum_squares=5.25, bucket_limit=[0.0, 2.0], bucket=[1, 2])
w.add_event(Event(wall_time=1765000002.0, step=5, summary=Summary(value=[Summary.Value(tag="weights/critic", histo=h)])))
img = Summary.Image(height=1, width=2, colorspace=3, encoded_image_string=b"\x89PNG not really")
w.add_event(Event(wall_time=1765000003.0, step=6, summary=Summary(value=[Summary.Value(tag="samples", image=img)])))
w.close()
f = glob.glob(out + "/events.out.tfevents.*")[0]
print(f, os.path.getsize(f))
