"""`piano install-service` writes a systemd unit that runs, reloads and restarts the daemon."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from piano.config import Config
from piano.daemon import systemd_unit


def install_service(config: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    """`piano install-service --config config --unit unit`."""
    command = ["install-service", "--config", str(config), "--unit", str(unit)]
    return subprocess.run(
        [sys.executable, "-m", "piano.cli", *command], capture_output=True, text=True, check=False
    )


def test_install_service_writes_a_unit_that_runs_the_config_reloads_with_sighup_and_restarts(
    tmp_path: Path,
) -> None:
    config = tmp_path / "piano.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nshutdown_timeout = 20\n')
    unit_path = tmp_path / "units" / "piano.service"
    done = install_service(config, unit_path)
    assert done.returncode == 0, done.stderr
    assert "systemctl --user reload piano.service" in done.stdout
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(unit_path.read_text())
    service = unit["Service"]
    assert service["ExecStart"] == f"{sys.executable} -m piano.cli run --config {config}"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["Restart"] == "on-failure"
    assert int(service["TimeoutStopSec"]) > 20, "systemd would kill the tree mid-shutdown"
    assert unit["Install"]["WantedBy"] == "default.target"


def test_a_bad_config_writes_no_unit(tmp_path: Path) -> None:
    config = tmp_path / "piano.toml"
    config.write_text("[daemon]\nlog_levl = 1\n")
    unit_path = tmp_path / "piano.service"
    done = install_service(config, unit_path)
    assert done.returncode == 2
    assert "did you mean log_level?" in done.stderr
    assert not unit_path.exists()


def test_the_unit_holds_no_secret() -> None:
    assert "KEY=" not in systemd_unit(Path("/etc/piano.toml"), Config())
