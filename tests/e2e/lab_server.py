"""A real JupyterLab server for browser tests: loopback only, its own token and directories.

:func:`start_jupyterlab` runs ``python -m jupyterlab`` from this environment, so every
kernel it starts is this environment's Python (jupyter_client swaps the kernelspec's
``python`` for the server's own interpreter). Its runtime, config, data, settings and
IPython directories, and its checkpoints, live under the caller's temporary directory,
and no ``JUPYTER_*`` variable of the caller's leaks in. Autosave is off, so the notebooks
in the repository are never rewritten. :meth:`JupyterLab.stop` ends the server and every
kernel it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

#: JupyterLab's own settings for the test: no autosave, no news or update checks.
USER_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def isolated_environment(home: Path) -> dict[str, str]:
    """The caller's environment less any Jupyter setting, plus directories under ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER", "JPY_", "IPYTHONDIR"))
    }
    directories = {
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
        "IPYTHONDIR": home / "ipython",
    }
    for name, directory in directories.items():
        directory.mkdir(parents=True, exist_ok=True)
        env[name] = str(directory)
    for name, settings in USER_SETTINGS.items():
        path = directories["JUPYTERLAB_SETTINGS_DIR"] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class JupyterLab:
    """A running server: its address, token, log, and the kernels it was seen to run."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    runtime_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` on the server, with the token as a query parameter."""
        separator = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{separator}token={self.token}"

    def api(self, path: str, *, method: str = "GET", timeout: float = 10) -> Any:
        """Call the REST API (``/api/...``) with the token; the decoded JSON answer."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, *, timeout: float) -> None:
        """Return once the server answers ``/api/status``; fail with its log if it won't."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("status", timeout=2)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
            else:
                return
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def wait_for_kernel(self, *, timeout: float) -> str:
        """The id of the server's kernel once it is idle with a client (the page) connected.

        While a kernel starts, jupyter_server may answer ``/api/kernels`` with a 500:
        that counts as "not yet".
        """
        deadline = time.monotonic() + timeout
        kernels: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                kernels = self.api("kernels")
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    raise
            else:
                for kernel in kernels:
                    if kernel["execution_state"] == "idle" and kernel["connections"] > 0:
                        return str(kernel["id"])
            time.sleep(0.2)
        raise TimeoutError(
            f"no idle, connected kernel within {timeout:.0f} s (last seen: {kernels}):\n"
            f"{self.log_tail()}"
        )

    def ask_kernel(self, kernel_id: str, code: str, *, timeout: float) -> dict[str, Any]:
        """Run ``code`` in the kernel (a second client, over its connection file).

        ``code`` must print one JSON object as its last line; that object is returned.
        """
        client = BlockingKernelClient(
            connection_file=str(self.runtime_dir / f"kernel-{kernel_id}.json")
        )
        client.load_connection_file()
        client.start_channels()
        printed: list[str] = []
        try:
            client.wait_for_ready(timeout=timeout)
            reply = client.execute_interactive(
                code,
                timeout=timeout,
                output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
            )
        finally:
            client.stop_channels()
        content = reply["content"]
        assert content["status"] == "ok", f"{content.get('ename')}: {content.get('evalue')}"
        answer: dict[str, Any] = json.loads("".join(printed).strip().splitlines()[-1])
        return answer

    def kernel_pids(self) -> list[int]:
        """Processes started with a connection file from this server's runtime directory."""
        marker = f"{self.runtime_dir}{os.sep}kernel-".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    command_line = (entry / "cmdline").read_bytes()
                except OSError:  # gone meanwhile, or not ours to read
                    continue
                if marker in command_line:
                    pids.append(int(entry.name))
        return pids

    def stop(self, *, timeout: float = 15) -> None:
        """Shut the kernels and the server down; kill whatever is left after ``timeout``."""
        if self.process.poll() is None:
            try:
                self.api("shutdown", method="POST", timeout=5)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        # Kernels run in sessions of their own: make sure none outlives the server.
        for pid in self.kernel_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_jupyterlab(*, root_dir: Path, home: Path, startup_timeout: float = 60) -> JupyterLab:
    """Start JupyterLab on a free loopback port with a random token; wait until it answers."""
    port, token = free_port(), secrets.token_hex(24)
    env = isolated_environment(home)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        # Lab checkpoints a notebook when it opens it; an absolute checkpoint directory
        # (os.path.join keeps it as is) keeps those copies out of the repository.
        f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}",
        "--LabApp.news_url=",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = home / "jupyterlab.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one if need be
        )
    lab = JupyterLab(process, port, token, Path(env["JUPYTER_RUNTIME_DIR"]), log_path)
    try:
        lab.wait_ready(timeout=startup_timeout)
    except BaseException:
        lab.stop()
        raise
    return lab
