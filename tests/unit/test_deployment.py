"""The deployment files (Dockerfile, .dockerignore, docker-compose.yml), checked by parsing them.

No Docker engine exists on these machines, so compose and the Dockerfile are validated here by
parsing them (PyYAML resolves anchors and ``<<`` merges as compose does).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from pipelines.cli import build_parser
from pipelines.config import Settings
from pipelines.ingest.auth import load_tokens
from pipelines.web.auth import TokenRegistry

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTINGS_ENV = frozenset(f.metadata["env"] for f in dataclasses.fields(Settings))
OUR_SERVICES = ("migrate", "worker", "sink", "web", "notify")
BROKERS = ("kafka", "kafka-2", "kafka-3")
THIRD_PARTY = (*BROKERS, "postgres")
HA_ENV = ROOT / "deploy" / "ha.env"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _interpolate(value: str, variables: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR:-default}``, with ``variables`` as the environment (none by default)."""
    if "${" in value and not re.fullmatch(r"(?:[^$]|\$\{[A-Z_][A-Z0-9_]*:-[^}]*\})*", value):
        raise AssertionError(f"only ${{VAR:-default}} interpolation is expected: {value!r}")
    variables = variables or {}
    return re.sub(
        r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}",
        lambda m: variables.get(m.group(1)) or m.group(2),
        value,
    )


def _env(service: dict[str, Any], variables: dict[str, str] | None = None) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: _interpolate(str(value), variables) for key, value in env.items()}


def _env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


# --------------------------------------------------------------------------- docker-compose.yml


def test_compose_file_is_the_compose_specification_with_the_expected_services(
    compose: dict[str, Any],
) -> None:
    assert "version" not in compose
    assert set(compose["services"]) == {*THIRD_PARTY, *OUR_SERVICES}
    profiles = {
        name: service["profiles"]
        for name, service in compose["services"].items()
        if service.get("profiles")
    }
    assert profiles == {"kafka-2": ["ha"], "kafka-3": ["ha"], "notify": ["webhooks"]}


def test_compose_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert _interpolate(tag) not in ("", "latest"), f"{name}: image {image!r} is not pinned"
    for name in THIRD_PARTY:
        image = services[name]["image"]
        assert "${" not in image, f"{name}: a third-party image is pinned in the file"
        assert re.search(r":\d+\.\d+", image), f"{name}: {image!r} is not a versioned tag"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert re.fullmatch(r"postgres:1[67]\.\d+.*", services["postgres"]["image"])


def test_our_services_are_built_from_this_repository(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name]["image"] for name in OUR_SERVICES}
    assert len(images) == 1
    for name in OUR_SERVICES:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build["context"]
        assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE


def test_our_services_only_use_settings_environment_variables(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in OUR_SERVICES:
        unknown = set(_env(services[name])) - SETTINGS_ENV
        assert not unknown, f"{name}: {sorted(unknown)} are not pipelines.config.Settings fields"


def test_our_services_share_one_production_environment(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    shared = compose["x-netquality-env"]
    for name in ("migrate", "worker", "sink"):
        assert services[name]["environment"] == shared, f"{name} does not use x-netquality-env"
    for name in ("web", "notify"):
        env = services[name]["environment"]
        assert {key: env[key] for key in shared} == shared, f"{name} does not extend the block"
    env = _env(services["worker"])
    settings = Settings.from_env(env)  # every value parses as its field's type
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.state_dir == Path("/var/lib/netquality")
    assert settings.partitions >= 1
    assert settings.replication_factor >= 1
    assert "NETQUALITY_REPLICATION_FACTOR" in env
    assert "NETQUALITY_PARTITIONS" in env
    # The 3 s default suits the embedded Tansu broker only; real Kafka gets a production value.
    assert "NETQUALITY_REBALANCE_TIMEOUT_S" in env
    assert settings.rebalance_timeout_s >= 10


def test_database_url_matches_the_postgres_service(services: dict[str, dict[str, Any]]) -> None:
    url = urlsplit(_env(services["sink"])["DATABASE_URL"])
    pg = _env(services["postgres"])
    assert url.scheme == "postgresql"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == pg["POSTGRES_USER"]
    assert url.password == pg["POSTGRES_PASSWORD"]
    assert url.path == "/" + pg["POSTGRES_DB"]
    raw = services["sink"]["environment"]["DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:-" in raw, "the password comes from POSTGRES_PASSWORD"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:-"
    )


def test_kafka_is_a_single_kraft_broker_reachable_as_configured(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = _env(services["kafka"])
    node = kafka["KAFKA_NODE_ID"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert set(kafka["KAFKA_LISTENERS"].split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    assert kafka["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka:9093"
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    bootstrap = _env(services["worker"])["KAFKA_BOOTSTRAP_SERVERS"]
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{bootstrap}"
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    default_brokers = [name for name in BROKERS if not services[name].get("profiles")]
    assert default_brokers == ["kafka"]
    assert Settings.from_env(_env(services["worker"])).replication_factor == 1
    data_dir = kafka["KAFKA_LOG_DIRS"]
    assert any(volume.endswith(":" + data_dir) for volume in services["kafka"]["volumes"])


def test_ha_profile_is_a_three_voter_kraft_quorum_with_replication_three(
    services: dict[str, dict[str, Any]],
) -> None:
    variables = _env_file(HA_ENV)
    assert variables["COMPOSE_PROFILES"] == "ha"
    quorum = variables["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    voters = {host: node for node, host in (voter.split("@") for voter in quorum)}
    assert len(voters) == 3
    volumes = set()
    for name in BROKERS:
        env = _env(services[name], variables)
        host = f"{name}:9093"
        assert voters[host] == env["KAFKA_NODE_ID"], f"{name} is not voter {env['KAFKA_NODE_ID']}"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == variables["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        assert env["CLUSTER_ID"] == _env(services["kafka"])["CLUSTER_ID"]
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        volumes.update(v.split(":")[0] for v in services[name]["volumes"])
        assert services[name]["healthcheck"] == services["kafka"]["healthcheck"]
    assert len(volumes) == 3, "each broker needs its own data volume"
    worker = Settings.from_env(_env(services["worker"], variables))
    assert worker.replication_factor == 3
    assert set(worker.kafka_bootstrap_servers.split(",")) == {f"{b}:9092" for b in BROKERS}


def test_healthchecks_on_kafka_and_postgres(services: dict[str, dict[str, Any]]) -> None:
    kafka = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092" in kafka
    postgres = " ".join(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in postgres
    for name in THIRD_PARTY:
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_depends_on_conditions(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    assert conditions("worker") == {
        "kafka": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    assert conditions("sink")["kafka"] == "service_healthy"
    assert conditions("sink")["migrate"] == "service_completed_successfully"
    for name, service in services.items():
        for dep, condition in conditions(name).items() if "depends_on" in service else ():
            assert dep in services
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s missing check"


def test_commands_are_netquality_sub_commands(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "migrate": ["db", "upgrade"],
        "worker": ["worker"],
        "sink": ["sink"],
        "web": ["web"],
        "notify": ["notify"],
    }
    parser = build_parser()
    for name, command in expected.items():
        assert services[name]["command"] == command
        args = parser.parse_args(command)
        assert callable(args.handler)


def test_migrate_is_one_shot_and_the_long_running_services_restart(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["migrate"]["restart"] == "no"  # a string: YAML's bare `no` is false
    for name in ("worker", "sink", "web", "notify", *THIRD_PARTY):
        assert services[name]["restart"] == "unless-stopped"


def test_worker_is_scalable_with_container_local_state(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"worker has {key}: it could not be scaled"
    state_dir = _env(worker)["NETQUALITY_STATE_DIR"]
    for volume in worker.get("volumes", []):
        target = volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        assert not state_dir.startswith(target), "replicas must not share a state directory"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == declared
    assert {"kafka", "postgres"} <= {
        name for name, service in services.items() if service.get("volumes")
    }


def test_web_is_published_healthy_and_reads_tokens_from_secret_files(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    web = services["web"]
    env = _env(web)
    settings = Settings.from_env(env)
    assert settings.web_host == "0.0.0.0"
    container_port = settings.web_port
    assert [p.split(":")[-1] for p in (_interpolate(p) for p in web["ports"])] == [
        str(container_port)
    ]
    assert f"127.0.0.1:{container_port}/healthz" in " ".join(web["healthcheck"]["test"])
    assert {dep: spec["condition"] for dep, spec in web["depends_on"].items()} == {
        "kafka": "service_healthy",
        "postgres": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    # Tokens: only as files mounted from compose secrets, never as values in the file.
    assert "NETQUALITY_WEB_TOKENS" not in env and "NETQUALITY_INGEST_TOKENS" not in env
    declared = compose["secrets"]
    for secret, variable in (("web_tokens", "NETQUALITY_WEB_TOKENS_FILE"),
                             ("ingest_tokens", "NETQUALITY_INGEST_TOKENS_FILE")):
        assert secret in web["secrets"]
        assert env[variable] == f"/run/secrets/{secret}"
        source = ROOT / declared[secret]["file"]
        assert source.with_name(source.name + ".example").is_file()
    example = ROOT / "deploy" / "secrets" / "web_tokens.example"
    assert len(TokenRegistry.from_sources(None, example)) == 1
    ingest = Settings(ingest_tokens_file=ROOT / "deploy" / "secrets" / "ingest_tokens.example")
    assert len(load_tokens(ingest)) == 1
    ignored = (ROOT / ".gitignore").read_text() + DOCKERIGNORE.read_text()
    assert "deploy/secrets" in ignored
    for name in ("migrate", "worker", "sink"):
        assert "ports" not in services[name], f"{name} needs no published port"


# --------------------------------------------------------------------------- Dockerfile


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends with a continuation"
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_is_multi_stage_with_pinned_base_images() -> None:
    froms = [args.split() for keyword, args in _instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    stages: set[str] = set()
    for words in froms:
        image = next(word for word in words if not word.startswith("--"))
        if image not in stages:
            _, _, tag = image.partition(":")
            assert tag and tag != "latest" and "$" not in image, f"unpinned base image {image}"
            assert re.match(r"\d+\.\d+\.\d+", tag), f"{image}: pin the full version"
        if len(words) >= 3 and words[-2].upper() == "AS":
            stages.add(words[-1])


def test_dockerfile_runs_netquality_as_a_non_root_user() -> None:
    final = _final_stage()
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001"
    entrypoint = [json.loads(args) for keyword, args in final if keyword == "ENTRYPOINT"]
    assert entrypoint[-1] == ["netquality"]
    cmd = [json.loads(args) for keyword, args in final if keyword == "CMD"]
    assert cmd[-1] == ["worker"]
    build_parser().parse_args(cmd[-1])
    assert not any(keyword == "HEALTHCHECK" for keyword, _ in final), "compose owns health checks"


def test_dockerfile_state_dir_and_migrations() -> None:
    final = _final_stage()
    text = "\n".join(f"{keyword} {args}" for keyword, args in final)
    assert "NETQUALITY_STATE_DIR=/var/lib/netquality" in text
    assert "chown 10001:10001 /var/lib/netquality" in text
    copies = [args.split() for keyword, args in final if keyword == "COPY"]
    sources = {word for words in copies for word in words[:-1] if not word.startswith("--")}
    assert {"migrations", "alembic.ini"} <= sources
    # migrate.py looks beside the installed package; the image links the scripts there.
    assert "MIGRATIONS_DIR" in text and "ln -s /app/migrations" in text
    assert "pip wheel" in "\n".join(args for keyword, args in _instructions() if keyword == "RUN")


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", ".venv", "var", "**/__pycache__", ".pytest_cache"):
        assert required in ignored
    for keyword, args in _instructions():
        if keyword != "COPY" or "--from=" in args:
            continue
        for source in args.split()[:-1]:
            if source.startswith("--"):
                continue
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by .dockerignore"
