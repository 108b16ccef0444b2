"""The Faust seam checks every patch's target and the Faust version before installing
anything: an upgrade that moves an internal stops the worker at start with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.transport.drivers import aiokafka as driver

from pipelines.config import Settings
from pipelines.streaming.faust import patches
from pipelines.streaming.faust.app import create_app
from pipelines.streaming.faust.patches import PATCHES, TESTED, FaustSeamError, check

ROOT = Path(__file__).resolve().parents[3]


def _one_line(error: pytest.ExceptionInfo[FaustSeamError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.name)
def test_every_patch_finds_its_targets_in_the_installed_faust(patch: patches.Patch) -> None:
    version = check((patch,))
    assert version == patches.installed_version()


def test_the_installed_faust_is_in_the_tested_range_and_pinned_to_it() -> None:
    assert patches.check_version() == patches.installed_version()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"faust-streaming{TESTED}"' in pyproject


def test_a_missing_target_fails_naming_the_patch_the_target_and_the_version(monkeypatch) -> None:
    monkeypatch.delattr(driver.AIOKafkaConsumerThread, "_create_worker_consumer")
    with pytest.raises(FaustSeamError) as error:
        check()
    message = _one_line(error)
    assert "'fetch max wait (fetchwait)'" in message
    assert "AIOKafkaConsumerThread._create_worker_consumer" in message
    assert patches.installed_version() in message


def test_a_missing_target_stops_create_app_before_any_patch_is_installed(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(driver.Producer, "_ensure_producer")
    installed = driver.AIOKafkaConsumerThread._highwaters
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", state_dir=str(tmp_path))
    with pytest.raises(FaustSeamError, match="batch producer"):
        create_app(settings)
    assert driver.AIOKafkaConsumerThread._highwaters is installed


def test_a_target_whose_signature_changed_fails_clearly(monkeypatch) -> None:
    def _highwaters(self, tps):  # renamed parameter: our patch calls it positionally, but
        return {}  # a change of signature is a change we have not read

    monkeypatch.setattr(driver.AIOKafkaConsumerThread, "_highwaters", _highwaters)
    with pytest.raises(FaustSeamError) as error:
        check()
    message = _one_line(error)
    assert "'end-offset fix (compat)'" in message and "(self, partitions)" in message
    assert "takes (self, tps)" in message


@pytest.mark.parametrize("version", ["0.14.9", "0.16.0", "1.0.0", "0.11.0"])
def test_a_faust_outside_the_tested_range_fails_clearly(version: str) -> None:
    with pytest.raises(FaustSeamError) as error:
        check(version=version)
    message = _one_line(error)
    assert version in message and TESTED in message


@pytest.mark.parametrize("version", ["0.15.0", "0.15.3", "0.15.10"])
def test_a_faust_inside_the_tested_range_passes(version: str) -> None:
    assert check(version=version) == version
