"""Fixtures that run a real ``gateway serve`` process, the way an administrator does.

``gateway_factory(extra_toml)`` writes a config directory with free ports and
a temporary data directory, starts ``python -m gateway serve`` with it, waits
for ``/healthz`` and stops the process (SIGTERM) after the test.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass
class RunningGateway:
    """One gateway process and where to reach it."""

    proc: subprocess.Popen[bytes]
    config_dir: Path
    data_dir: Path
    http_port: int
    https_port: int
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def certificate(self) -> Path:
        return self.data_dir / "tls" / "selfsigned.crt"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certificate))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def gateway_env(pythonpath: Sequence[str | Path] = ()) -> dict[str, str]:
    """The environment for a gateway subprocess: the repo (for test plugins) on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
    paths = [str(p) for p in pythonpath] + [str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def run_cli(
    *args: str, config_dirs: Sequence[Path] = (), pythonpath: Sequence[str | Path] = (),
    timeout: float = 60.0, stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``gateway ARGS`` to completion and return its output."""
    command = [sys.executable, "-m", "gateway"]
    for directory in config_dirs:
        command += ["--config-dir", str(directory)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, input=stdin,
        env=gateway_env(pythonpath), cwd=REPO,
    )


def add_users(gw: RunningGateway, domain: str, users: dict[str, str]) -> None:
    """``gateway domain add`` and ``user add`` for ``{address: display name}``, as an
    administrator runs them (the password is unused: the tests log in otherwise)."""
    done = run_cli("domain", "add", domain, config_dirs=[gw.config_dir])
    assert done.returncode == 0, done.stderr
    for address, name in users.items():
        done = run_cli("user", "add", address, "--password-stdin", "--display-name", name,
                       config_dirs=[gw.config_dir], stdin="unused-directory-pw\n")
        assert done.returncode == 0, done.stderr


def write_config(directory: Path, data_dir: Path, http: int, https: int, extra: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "50-test.toml").write_text(
        f'[gateway]\ndata_dir = "{data_dir}"\nlog_level = "debug"\ngrace_period = 5.0\n'
        f'[http]\nlisten = ["127.0.0.1:{http}"]\nlisten_tls = ["127.0.0.1:{https}"]\n'
        # The line protocols' fixed default ports would collide between gateways of
        # tests running side by side: a test that wants one names its ports in `extra`.
        '[imap]\nlisten = []\nlisten_tls = []\n'
        '[smtp]\ndelivery_listen = []\nsubmission_listen = []\nsubmission_listen_tls = []\n'
    )
    (directory / "60-test-extra.toml").write_text(extra)


def wait_healthy(gw: RunningGateway, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gw.proc.returncode}:\n{gw.log()}")
        try:
            if httpx.get(f"{gw.http_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway not healthy after {timeout} s:\n{gw.log()}")


class GatewayFactory:
    """Starts gateways for one test and stops them all afterwards."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.running: list[RunningGateway] = []

    def __call__(
        self, extra: str = "", *, ports: Sequence[str] = (), args: Sequence[str] = (),
        pythonpath: Sequence[str | Path] = (), wait: bool = True,
    ) -> RunningGateway:
        """Start a gateway. ``extra`` is TOML added to its config; ``{port_NAME}``
        placeholders in it are replaced by free ports named in ``ports``."""
        index = len(self.running)
        base = self.tmp_path / f"gw{index}"
        named = {name: free_port() for name in ports}
        http, https = free_port(), free_port()
        config_dir, data_dir = base / "conf", base / "data"
        write_config(config_dir, data_dir, http, https,
                     extra.format(**{f"port_{k}": v for k, v in named.items()}))
        log_path = base / "gateway.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config-dir", str(config_dir), "serve", *args],
                stdout=log, stderr=subprocess.STDOUT, env=gateway_env(pythonpath), cwd=base,
            )
        gw = RunningGateway(proc, config_dir, data_dir, http, https, log_path, named)
        self.running.append(gw)
        if wait:
            wait_healthy(gw)
        return gw

    def stop_all(self) -> None:
        for gw in self.running:
            gw.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    factory = GatewayFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> RunningGateway:
    """A gateway on its defaults (free ports, temporary data directory)."""
    return gateway_factory()


@pytest.fixture(scope="session")
def hello_plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin, pip-installed into a directory of its own.

    Installed with pip from its own pyproject.toml like any third-party
    package; kept out of the shared venv so other tests and ``make run`` see
    the gateway without it. Put this path on PYTHONPATH to "install" it.
    """
    return install_example_plugin(tmp_path_factory.mktemp("hello-plugin-site"))


def install_example_plugin(target: Path) -> Path:
    """pip-install ``examples/hello-plugin`` into ``target``; return ``target``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO / "examples" / "hello-plugin")],
        check=True, capture_output=True, timeout=300,
    )
    return target
