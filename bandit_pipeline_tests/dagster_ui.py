"""What the process tests use to run and talk to the real Dagster processes: a process
stopped by its id, polling with a timeout, the webserver's GraphQL API, and headless
Chromium driven over the DevTools protocol.

Chromium is driven through ``--remote-debugging-pipe`` (JSON messages ending in a NUL
byte on file descriptors 3 and 4), so no port and no WebSocket client are needed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
# How Chromium runs headless on these machines: no sandbox as root, no GPU, and none of
# the background connections a closed network refuses.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after
    ``timeout`` seconds (with the last value probed)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)


class Process:
    """A command in its own process group, its output in a log file; stopped by its id."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> None:
        self.name, self.command, self.env, self.log, self.cwd = name, list(command), env, log, cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, pass_fds: Sequence[int] = ()) -> None:
        with self.log.open("ab") as out:
            out.write(f"--- {shlex.join(self.command)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.command, env=dict(self.env), cwd=self.cwd, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, pass_fds=pass_fds,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process, SIGKILL to its group after ``timeout`` s, and to what the
        group still holds (the code servers and run workers Dagster started)."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # the group is this process's own (its pid)
        self.popen.wait(timeout)
        self.popen = None

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""
        return f"--- last lines of {self.log}:\n" + "\n".join(text.splitlines()[-lines:])


class GraphQLError(RuntimeError):
    pass


class GraphQL:
    """The webserver's GraphQL endpoint, the one its UI uses."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=60.0)

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = self.client.post("/graphql", json={"query": query, "variables": variables})
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise GraphQLError(f"{response.status_code}: {body.get('errors')}")
        return body["data"]

    def close(self) -> None:
        self.client.close()


class Browser:
    """One headless Chromium with a new, empty profile, one page at a time."""

    def __init__(self, profile: Path, log: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        chromium = shlex.join(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"]
        )
        # Chromium reads commands on descriptor 3 and answers on descriptor 4.
        script = f"exec {chromium} 3<&{commands_read} 4>&{replies_write}"
        self.process = Process("chromium", ["bash", "-c", script], os.environ, log, profile)
        self.process.start(pass_fds=(commands_read, replies_write))
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.exceptions: list[str] = []  # uncaught JavaScript exceptions of the page

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe:\n" + self.process.tail())
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result; events that arrive meanwhile are noted."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("method") == "Runtime.exceptionThrown":
                details = reply["params"]["exceptionDetails"]
                self.exceptions.append(
                    details.get("exception", {}).get("description", details["text"])
                )
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str, local_storage: Mapping[str, Any], width: int, height: int) -> str:
        """A new page at ``url`` whose origin's localStorage holds ``local_storage`` (as
        JSON, the way the Dagster UI stores its settings) before the page's scripts run."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Runtime.enable", session)
        self.send("Page.enable", session)
        self.send(
            "Emulation.setDeviceMetricsOverride", session,
            width=width, height=height, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        settings = "".join(
            f"localStorage.setItem({json.dumps(k)}, {json.dumps(json.dumps(v))});"
            for k, v in local_storage.items()
        )
        self.send("Page.addScriptToEvaluateOnNewDocument", session, source=settings)
        self.send("Page.navigate", session, url=url)
        return session

    def text(self, session: str) -> str:
        """What the page shows, as text."""
        result = self.send(
            "Runtime.evaluate", session,
            expression="document.body ? document.body.innerText : ''", returnByValue=True,
        )  # fmt: skip
        return result["result"].get("value", "")

    def screenshot(self, session: str, path: Path) -> None:
        data = self.send("Page.captureScreenshot", session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        os.close(self._commands)
        os.close(self._replies)
        self.process.stop(timeout=10.0)
