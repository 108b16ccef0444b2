"""The camera clip the browsers send: a generated ``.y4m`` (never committed; tens of MB).

Chromium's built-in fake camera pattern needs ~0.3 Mbit/s, so a rate cap barely touches it
(issue 23). This clip has detail that moves and fresh noise in every frame, so the encoder
always has residual to spend bits on and the send rate climbs to what the bandwidth estimate
allows, as a real camera's does. Small by default (640x360 at 15 fps): the lab shares a
CPU-contended machine, and two VP8 encoders at 720p would be CPU-limited, not network-limited.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 15, 8


def write_clip(path: Path, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS,
               seconds: int = SECONDS, seed: int = 0) -> Path:
    """Write a looping 4:2:0 y4m clip; Chromium plays it in a loop."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(16, 235, size=(height * 2, width * 2), dtype=np.uint8)
    texture = ((texture.astype(np.uint16) + np.roll(texture, 1, axis=1)) // 2).astype(np.uint8)
    chroma_u = np.full((height // 2, width // 2), 110, dtype=np.uint8)
    chroma_v = np.full((height // 2, width // 2), 150, dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        frames = fps * seconds
        for i in range(frames):
            dx, dy = (i * 3) % width, (i * 2) % height
            luma = texture[dy:dy + height, dx:dx + width].astype(np.int16)
            cx = int((width - 120) * (0.5 + 0.5 * np.sin(2 * np.pi * i / frames)))
            luma[((xx - cx - 60) ** 2 + (yy - height // 2) ** 2) < 60 ** 2] = 235
            luma += rng.integers(-10, 11, size=luma.shape, dtype=np.int16)
            out.write(b"FRAME\n")
            out.write(np.clip(luma, 16, 235).astype(np.uint8).tobytes())
            out.write(chroma_u.tobytes())
            out.write(chroma_v.tobytes())
    return path
