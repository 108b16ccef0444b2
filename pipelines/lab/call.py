"""A call of real headless Chromium participants through the impairment relay.

Each participant is its own Chromium (Debian's ``/usr/bin/chromium``, a fresh profile per
launch) with one page, :file:`static/lab.html`, served at the ingest's origin so that
``netquality-stats.js`` and its posts are same-origin. Every pair of participants gets a
:class:`~.relay.PairRelay`; the lab passes the session descriptions between the pages with the
candidates rewritten (:mod:`.sdp`) and checks that ICE selected the relay. The packets from
``A`` to ``B`` cross ``A``'s uplink, then ``B``'s downlink (:class:`~.impairment.Chain`).
"""

from __future__ import annotations

import itertools
import shutil
import string
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pipelines.lab.impairment import Chain, Link
from pipelines.lab.profile import DIRECTIONS, Profile, Step
from pipelines.lab.relay import RelayThread
from pipelines.lab.sdp import splice

CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    # Headless pages are "hidden": without these Chromium throttles their timers and the
    # getStats loop would tick at 1/min instead of 1/s.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
PAGE_PATH = "lab"
CONNECT_TIMEOUT_S = 30.0


class LabError(RuntimeError):
    """The call could not be set up as asked (no Chromium, ICE bypassed the relay...)."""


def chromium_path() -> str:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        raise LabError("no Chromium found: install Debian's chromium package "
                       "(apt-get install chromium) or put `chromium` on PATH")
    return found


def labels(count: int) -> list[str]:
    if not 2 <= count <= 6:
        raise LabError(f"a lab call has 2 to 6 participants, not {count}")
    return list(string.ascii_uppercase[:count])


@dataclass
class CallSetup:
    ingest_url: str
    """The ingest's base URL, ending in ``/`` (``.../v1/samples`` is where samples go)."""
    token: str
    room_sid: str
    region: str
    sids: dict[str, str]
    """Participant label (A, B, ...) -> participantSid."""
    clip: Path
    video: dict[str, int] = field(default_factory=lambda: {"width": 640, "height": 360,
                                                           "frameRate": 15})


@dataclass
class Tick:
    """One second of the call as the lab saw it."""

    t_s: float
    step: Step


class LabCall:
    """The running call: pages, relays, links; ``apply`` a profile step, ``sample`` stats."""

    def __init__(self, setup: CallSetup, relays: RelayThread, pages: dict[str, Any]) -> None:
        self.setup = setup
        self.relays = relays
        self.pages = pages
        self.links = {(who, d): Link() for who in pages for d in DIRECTIONS}
        self.relay_ports: dict[str, set[int]] = {who: set() for who in pages}
        self.pc_ids: dict[str, list[str]] = {who: [] for who in pages}

    def pc_id(self, own: str, peer: str) -> str:
        """A two-party call names each connection after its participant, so the rtcstats
        replay (one participant per peer connection) yields the participant's own name."""
        return own if len(self.pages) == 2 else f"{own}-{peer}"

    def connect(self) -> None:
        for a, b in itertools.combinations(sorted(self.pages), 2):
            relay = self.relays.pair(
                Chain(self.links[(a, "up")], self.links[(b, "down")]),
                Chain(self.links[(b, "up")], self.links[(a, "down")]),
            )
            port_a, port_b = relay.ports  # a sends to port_a, b sends to port_b
            id_a, id_b = self.pc_id(a, b), self.pc_id(b, a)
            offer = self.pages[a].evaluate("([id]) => lab.offer(id)", [id_a])
            answer = self.pages[b].evaluate("([id, sdp]) => lab.answer(id, sdp)",
                                            [id_b, splice(offer, port_b)])
            self.pages[a].evaluate("([id, sdp]) => lab.accept(id, sdp)",
                                   [id_a, splice(answer, port_a)])
            self.relay_ports[a].add(port_a)
            self.relay_ports[b].add(port_b)
            self.pc_ids[a].append(id_a)
            self.pc_ids[b].append(id_b)
        self._await_relay()

    def _await_relay(self) -> None:
        """Connected, and through the relay: a direct pair would silently skip every impairment."""
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            selected = {who: page.evaluate("lab.selected()") for who, page in self.pages.items()}
            pending = [who for who, pcs in selected.items()
                       if len(pcs) != len(self.pc_ids[who]) or None in pcs.values()]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise LabError(f"ICE did not connect within {CONNECT_TIMEOUT_S:.0f} s "
                               f"(participants {pending}); see the browser console")
            time.sleep(0.25)
        for who, pcs in selected.items():
            for pc_id, remote in pcs.items():
                if remote["port"] not in self.relay_ports[who]:
                    raise LabError(f"{pc_id}: ICE selected {remote}, not the relay "
                                   f"({sorted(self.relay_ports[who])}): the impairments would "
                                   "not apply")

    def publish(self) -> None:
        for who, page in self.pages.items():
            page.evaluate("(o) => lab.publish(o)", {
                "endpoint": self.setup.ingest_url + "v1/samples", "token": self.setup.token,
                "roomSid": self.setup.room_sid, "participantSid": self.setup.sids[who],
                "region": self.setup.region, "batchIntervalMs": 1000,
            })

    def apply(self, step: Step) -> None:
        def change() -> None:
            for (who, direction), link in self.links.items():
                link.set(step.link(who, direction))
        self.relays.call(change)

    def sample(self) -> None:
        for page in self.pages.values():
            page.evaluate("lab.sample()")

    def drain(self) -> dict[str, dict[str, Any]]:
        return {who: page.evaluate("lab.drain()") for who, page in self.pages.items()}

    def stop(self) -> dict[str, dict[str, Any]]:
        for page in self.pages.values():
            page.evaluate("lab.stop()")
        return self.drain()

    def link_counts(self) -> dict[str, dict[str, int]]:
        return {f"{who}.{d}": asdict(link.counts) for (who, d), link in sorted(self.links.items())}


@contextmanager
def open_call(setup: CallSetup, *, chromium: str | None = None) -> Iterator[LabCall]:
    """Browsers up, pages loaded, media started, everyone connected through the relays."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 (the lab extra)
    except ImportError:
        raise LabError("netquality lab drives Chromium with Playwright: "
                       "pip install 'netquality[lab]' (never `playwright install`: it uses "
                       "the system Chromium)") from None
    executable = chromium or chromium_path()
    page_html = resources.files("pipelines.lab").joinpath("static/lab.html").read_text("utf-8")
    page_url = setup.ingest_url + PAGE_PATH
    with ExitStack() as stack:
        pw = stack.enter_context(sync_playwright())
        relays = stack.enter_context(RelayThread())
        pages: dict[str, Any] = {}
        for who in setup.sids:
            # One browser per participant; Playwright gives each launch a fresh --user-data-dir.
            browser = pw.chromium.launch(
                executable_path=executable, headless=True,
                args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={setup.clip}"],
            )
            stack.callback(browser.close)
            page = browser.new_page()
            page.route(page_url, lambda route: route.fulfill(
                status=200, content_type="text/html; charset=utf-8", body=page_html))
            page.goto(page_url)
            page.evaluate("(v) => lab.start(v)", setup.video)
            pages[who] = page
        call = LabCall(setup, relays, pages)
        call.connect()
        yield call


def run_profile(call: LabCall, profile: Profile, on_start: Callable[[int], None],
                on_tick: Callable[[Tick, LabCall], None], *,
                sample_interval_s: float = 1.0) -> None:
    """Publish, then walk the profile once a second: apply its step, record getStats.

    ``on_start`` gets the call's t = 0 in ms since the epoch (the profile's clock)."""
    call.publish()
    began = time.monotonic()
    on_start(int(time.time() * 1000))
    current: Step | None = None
    next_at = began
    while True:
        t = time.monotonic() - began
        if t >= profile.duration_s:
            break
        step = profile.at(t)
        if step is not current:
            call.apply(step)
            current = step
        call.sample()
        on_tick(Tick(round(t, 3), step), call)
        next_at += sample_interval_s
        time.sleep(max(0.0, next_at - time.monotonic()))
