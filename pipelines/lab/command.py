"""``netquality lab``: a real browser call under a network profile, scored end to end.

Order: read the profile (bad input stops here with one line); write the camera clip to a
temporary directory; start the pipeline (:mod:`.pipeline`) and the levels reader; open the
call (:mod:`.call`); walk the profile, recording every getStats into the run's rtcstats dump;
stop the browsers; wait for the pipeline's levels to reach the last sample; then print the
timeline and write ``report.json``, ``chart.png`` and ``<profile>.rtcstats`` to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from pipelines.config import Settings
from pipelines.lab.call import CallSetup, LabCall, LabError, Tick, labels, open_call, run_profile
from pipelines.lab.clip import write_clip
from pipelines.lab.impairment import ImpairmentError
from pipelines.lab.pipeline import LevelsReader, open_pipeline
from pipelines.lab.profile import Profile, ProfileError, load_profile
from pipelines.lab.record import RtcstatsWriter, open_dump
from pipelines.lab.report import (
    dump_samples,
    report_json,
    rescore,
    table,
    timeline,
    write_chart,
    write_json,
)

SETTLE_TIMEOUT_S = 30.0


def host_udp_drops() -> int | None:
    """The kernel's count of UDP datagrams dropped for full receive buffers, host-wide.

    Not this run's alone, but a rise during a run says the host (not the profile) lost
    packets, which a reader of the report should know."""
    try:
        lines = Path("/proc/net/snmp").read_text().splitlines()
    except OSError:
        return None
    rows = [line.split() for line in lines if line.startswith("Udp:")]
    if len(rows) < 2 or "RcvbufErrors" not in rows[0]:
        return None
    return int(rows[1][rows[0].index("RcvbufErrors")])


def _video(spec: str) -> dict[str, int]:
    try:
        size, _, fps = spec.partition("@")
        width, height = (int(v) for v in size.lower().split("x"))
        video = {"width": width, "height": height, "frameRate": int(fps or 15)}
    except ValueError:
        raise ProfileError(f"--video {spec!r}: expected WIDTHxHEIGHT@FPS, e.g. 640x360@15"
                           ) from None
    if not (64 <= width <= 1920 and 64 <= height <= 1080 and 1 <= video["frameRate"] <= 30):
        raise ProfileError(f"--video {spec!r}: 64x64 to 1920x1080 at 1 to 30 fps")
    if width % 2 or height % 2:
        raise ProfileError(f"--video {spec!r}: width and height must be even (4:2:0)")
    return video


class _Recorder:
    """The run's dump, opened at t = 0 so its header can say when the profile started."""

    def __init__(self, path: Path, profile: Profile, setup: CallSetup) -> None:
        self.path = path
        self.profile = profile
        self.setup = setup
        self.start_ms = 0
        self.handle: IO[str] | None = None
        self.writer: RtcstatsWriter | None = None
        self.posts: dict[str, Any] = {}

    def start(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.handle, self.writer = open_dump(self.path, {"lab": {
            "profile": self.profile.as_json(), "startMs": start_ms,
            "video": self.setup.video, "participants": list(self.setup.sids),
        }})

    def write(self, drained: dict[str, dict[str, Any]]) -> None:
        assert self.writer is not None
        for who, part in drained.items():
            for method, pc_id, payload, ts in part["records"]:
                self.writer.record(method, pc_id, payload, ts)
            self.posts[who] = {k: part[k] for k in ("posts", "failed", "errors")}

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def run(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.profile, args.duration)
        video = _video(args.video)
        who = labels(args.participants)
    except (ProfileError, ImpairmentError, LabError) as exc:
        print(f"netquality lab: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)  # reconnect chatter is not news here
    settings = Settings.from_env()
    if args.ingest_url and not settings.kafka_bootstrap_servers:
        print("netquality lab: --ingest-url needs KAFKA_BOOTSTRAP_SERVERS: the broker of that "
              "pipeline, to read its levels back", file=sys.stderr)
        return 2
    out = (args.out or Path(settings.state_dir) / "lab" /
           f"{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}").absolute()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _run(args, settings, profile, video, who, out)
    except (LabError, RuntimeError) as exc:
        print(f"netquality lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"netquality lab: interrupted; partial output in {out}", file=sys.stderr)
        return 130
    except Exception as exc:
        if type(exc).__module__.startswith("playwright"):  # the browser died or refused
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"netquality lab: Chromium: {first}", file=sys.stderr)
            return 1
        raise


def _run(args: argparse.Namespace, settings: Settings, profile: Profile,
         video: dict[str, int], who: list[str], out: Path) -> int:
    run_id = secrets.token_hex(3)
    room = f"RM-lab-{profile.name}-{run_id}"
    sids = {label: f"PA-lab-{label}-{run_id}" for label in who}
    dump = out / f"{profile.name}.rtcstats"
    print(f"netquality lab: profile {profile.name} ({profile.note or 'custom'}), "
          f"{profile.duration_s:g} s, participants {', '.join(who)}; output {out}",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="netquality-lab-") as tmp, \
            open_pipeline(settings, out / "logs", args.ingest_url) as pipeline:
        clip = write_clip(Path(tmp) / "camera.y4m", video["width"], video["height"],
                          video["frameRate"])
        setup = CallSetup(pipeline.ingest_url, pipeline.token, room, args.region, sids, clip,
                          video)
        reader = LevelsReader(pipeline.settings, room)
        reader.start()
        reader.ready.wait(30)
        recorder = _Recorder(dump, profile, setup)
        link_counts: dict[str, Any] = {}
        first_pc: dict[str, str] = {label: label for label in who}
        drops_before = host_udp_drops()

        def on_tick(tick: Tick, call: LabCall) -> None:
            pipeline.check()
            recorder.write(call.drain())
            if not args.quiet:
                latest = {e.participant_sid: e.level for e in reader.snapshot()}
                levels = " ".join(f"{label}={latest.get(sid, '-')}" for label, sid in sids.items())
                print(f"  t={tick.t_s:5.1f}s  {tick.step.label:34.34}  levels {levels}",
                      file=sys.stderr)

        try:
            with open_call(setup) as call:
                run_profile(call, profile, recorder.start, on_tick)
                recorder.write(call.stop())
                link_counts = call.link_counts()
                first_pc = {label: ids[0] for label, ids in call.pc_ids.items()}
            drops_after = host_udp_drops()
            last_ms = recorder.start_ms + int(profile.duration_s * 1000) - 2000
            reader.settle(set(sids.values()), last_ms, SETTLE_TIMEOUT_S)
        finally:
            recorder.close()
            reader.close()  # before the broker stops, or it complains until it does
        events = reader.snapshot()
    samples = dump_samples(dump)
    # The dump has one participant per peer connection (the rtcstats convention): with more
    # than two parties, the getStats columns and the re-score show each one's first connection.
    sample_sids = {label: f"{dump.name}-{first_pc[label]}" for label in who}
    rows = timeline(profile, recorder.start_ms, sids, events, samples, sample_sids)
    rescored = timeline(profile, recorder.start_ms, sample_sids, rescore(samples), samples,
                        sample_sids)
    print(table(rows))
    document = report_json(profile, rows, sids=sids, extra={
        "room": room, "startMs": recorder.start_ms, "video": video, "dump": dump.name,
        "links": link_counts, "posts": recorder.posts,
        "hostUdpReceiveBufferDrops": (drops_after - drops_before
                                      if drops_before is not None and drops_after is not None
                                      else None),
        "rescoredLevels": [{"t": r.t_s, **r.levels} for r in rescored],
    })
    write_json(out / "report.json", document)
    write_chart(out / "chart.png", profile, rows, f"netquality lab: {profile.name}")
    mismatched = sum(1 for a, b in zip(rows, rescored, strict=True) if a.levels != b.levels)
    print(f"\nwrote {out / 'report.json'}, {out / 'chart.png'} and {dump} "
          f"(re-score: netquality score --format rtcstats {dump}); "
          f"{mismatched} of {len(rows)} seconds differ between the pipeline and the offline "
          "re-score of the dump", file=sys.stderr)
    failed = sum(p.get("failed", 0) for p in recorder.posts.values())
    if failed:
        print(f"warning: {failed} sample posts were refused", file=sys.stderr)
    if document["hostUdpReceiveBufferDrops"]:
        print(f"warning: the host dropped {document['hostUdpReceiveBufferDrops']} UDP datagrams "
              "for full receive buffers during the run (CPU contention?): that loss was not "
              "in the profile", file=sys.stderr)
    return 0
