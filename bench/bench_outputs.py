"""Outputs: what part candidates, CSV, saved maps and H.264 videos cost, as ratios in one run.

* parse vs parse_with_peaks on a real photo's maps (the default path must not slow down),
* one frame's record: posecli JSON vs CSV rows,
* one frame's maps written as float16 .npz vs the network run that made them,
* annotated video frames: FFmpeg H.264 vs OpenCV mp4v (frames per second of the sink alone;
  FFmpeg encodes in its own process, so beside the network it mostly uses the other core).
"""

from __future__ import annotations

import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from . import MINI, ms, paired_times, settings


def _parse_and_records(repeat: int, warmup: int) -> dict:
    from posecli.formats.csv import CsvStream
    from posecli.formats.maps import write_maps
    from posecli.formats.records import frame_record
    from posecli.inference.estimator import PoseEstimator
    from posecli.io.images import read_image
    from posecli.parser import parse, parse_with_peaks

    est = PoseEstimator(device="cpu")
    photo = MINI / "000000000785.jpg"
    image = read_image(photo)
    maps = est.maps(image)
    frame = est.parse(maps, source=str(photo))
    sk, cfg = est.skeleton, est.parser_config
    t = paired_times({
        "parse": lambda: parse(maps.heatmaps, maps.pafs, sk, cfg, maps.stride),
        "parse_with_peaks": lambda: parse_with_peaks(maps.heatmaps, maps.pafs, sk, cfg, maps.stride),
    }, repeat=4 * repeat, warmup=warmup)
    sink = io.StringIO()
    stream = CsvStream(None)
    stream._file.fh = sink  # rows into memory: the formatting, not the disk
    w = paired_times({
        "json_record": lambda: json.dumps(frame_record(frame)),
        "csv_rows": lambda: stream.add(frame),
    }, repeat=4 * repeat, warmup=warmup)
    with tempfile.TemporaryDirectory() as tmp:
        m = paired_times({
            "network": lambda: est.maps(image),
            "write_maps": lambda: write_maps(Path(tmp) / "m.npz", maps, sk),
        }, repeat=repeat, warmup=warmup)
        size = (Path(tmp) / "m.npz").stat().st_size
    return {
        "title": "Part candidates, CSV rows and saved maps (one 640x425 photo, height 256)",
        "rows": [
            {"what": "parse_with_peaks / parse", "ms": ms(t["parse_with_peaks"]),
             "ratio": round(t["parse_with_peaks"] / t["parse"], 3)},
            {"what": "CSV rows / posecli JSON record (one frame)", "ms": ms(w["csv_rows"], 3),
             "ratio": round(w["csv_rows"] / w["json_record"], 3)},
            {"what": "write maps .npz / network run", "ms": ms(m["write_maps"]),
             "ratio": round(m["write_maps"] / m["network"], 3)},
        ],
        "maps_file_bytes": size,
    }


def _sinks(repeat: int) -> dict:
    import cv2

    from posecli.io.video_sink import VideoSink

    photo = cv2.resize(cv2.imread(str(MINI / "000000000785.jpg")), (640, 480))
    frames = [np.roll(photo, 4 * i, axis=1) for i in range(8)]  # a panning shot
    n = 60 * max(1, repeat // 3)
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, use_ffmpeg in (("ffmpeg", True), ("opencv", False)):
            samples = []
            for r in range(3):
                sink = VideoSink(Path(tmp) / f"{name}{r}.mp4", 25, (640, 480), use_ffmpeg=use_ffmpeg)
                t0 = time.perf_counter()
                for i in range(n):
                    sink.write(frames[i % 8])
                sink.close()
                samples.append(n / (time.perf_counter() - t0))
            rates[name] = (statistics.median(samples), sink.codec)
    return {
        "title": "Annotated video sink, 640x480 frames of a photo panning (sink alone, frames/s)",
        "rows": [{"sink": k, "codec": c, "frames_per_s": round(v, 1)} for k, (v, c) in rates.items()],
        "h264_over_mp4v": round(rates["ffmpeg"][0] / rates["opencv"][0], 3),
    }


def run(report: dict) -> None:
    repeat, warmup = settings(report)
    report["sections"]["outputs"] = _parse_and_records(repeat, warmup)
    report["sections"]["video_sink"] = _sinks(repeat)
