"""``manage.py run_stack``: every process of the demo together, stopped together and cleanly."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from core.management.commands import run_stack
from core.management.commands.run_stack import Command, web_url
from tests.channels.sim_helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_web_url_is_where_the_other_processes_reach_web():
    assert web_url("127.0.0.1:8230") == "http://127.0.0.1:8230"
    assert web_url("0.0.0.0:8000") == "http://127.0.0.1:8000"
    assert web_url("[::]:8000") == "http://127.0.0.1:8000"


def test_demo_processes_are_told_where_web_is(settings):
    settings.REDIS_URL = ""
    settings.STACK_EXTRA_PROCESSES = {"simulator": ["{python}", "-m", "simulator", "--push-base-url", "{web_url}"],
                                      "pos-client": ["{python}", "manage.py", "pos_demo_client", "--base-url",
                                                     "{web_url}"]}

    procs = Command().processes(bind="0.0.0.0:8230", web_workers=2)

    assert list(procs) == ["web", "scheduler", "simulator", "pos-client"]
    assert procs["simulator"] == [sys.executable, "-m", "simulator", "--push-base-url", "http://127.0.0.1:8230"]
    assert procs["pos-client"][-2:] == ["--base-url", "http://127.0.0.1:8230"]
    assert procs["web"][3:7] == ["config.wsgi:application", "--config", "python:config.gunicorn", "--bind"]


class FakeProcess:
    def __init__(self, name, log, *, stubborn=False):
        self.name, self.log, self.stubborn = name, log, stubborn
        self.pid = 1000 + len(log)
        self.returncode = None

    def poll(self):
        return self.returncode

    def send_signal(self, sig):
        self.log.append((self.name, signal.Signals(sig).name))

    def wait(self, timeout=None):
        if self.stubborn and timeout is not None:
            raise subprocess.TimeoutExpired(self.name, timeout)
        self.returncode = 0
        return 0


def test_children_are_stopped_one_at_a_time_with_one_sigterm_each_in_order(monkeypatch):
    log, killed = [], []
    monkeypatch.setattr(run_stack.os, "killpg", lambda pid, sig: killed.append((pid, signal.Signals(sig).name)))
    names = ["web", "worker", "beat", "simulator", "pos-client", "extra"]
    running = {name: FakeProcess(name, log, stubborn=name == "simulator") for name in names}
    running["beat"].returncode = 0  # exited already: nothing to send
    command = Command()

    command._stop_all(running)

    assert log == [("extra", "SIGTERM"), ("pos-client", "SIGTERM"), ("web", "SIGTERM"), ("worker", "SIGTERM"),
                   ("simulator", "SIGTERM")]
    assert killed == [(running["simulator"].pid, "SIGKILL")]  # only the one that outlived STOP_TIMEOUT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack_env(tmp_path):
    """A scratch SQLite database with the demo seeded, and ports of its own for web and the simulator."""
    web, sim = f"127.0.0.1:{_free_port()}", _free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_", "DJANGO_SETTINGS_MODULE", "TEST_"))}
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), WEB_BIND=web, WEB_WORKERS="1", SIMULATOR_PORT=str(sim),
               SIMULATOR_BASE_URL=f"http://127.0.0.1:{sim}", WXPAY_BASE_URL=f"http://127.0.0.1:{sim}",
               OMS_BASE_URL=f"http://127.0.0.1:{sim}", SIMULATOR_ORDERS_FILE=str(tmp_path / "sim-orders.json"),
               WXPAY_NOTIFY_URL=f"http://{web}/api/v1/payments/notify/wxpay",
               OMS_CALLBACK_URL=f"http://{web}/api/v1/fulfilment/oms/callback")
    for argv in (["migrate", "--noinput", "-v0"], ["seed_demo", "--orders", "40"]):
        subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env, check=True, capture_output=True,
                       timeout=600)
    return env, f"http://{web}"


def test_ctrl_c_stops_the_whole_stack_cleanly_with_the_demo_quiet_meanwhile(stack_env, tmp_path):
    env, base_url = stack_env
    output = tmp_path / "stack.log"

    with open(output, "wb") as sink:
        stack = subprocess.Popen([sys.executable, "manage.py", "run_stack"], cwd=ROOT, env=env, stdout=sink,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def answering():
                try:
                    return requests.get(f"{base_url}/ping/", timeout=10).status_code == 200
                except requests.RequestException:  # not listening yet, or no worker booted yet
                    return False

            assert wait_for(answering, 120), output.read_text()
            # The POS demo client accepts the seeded orders waiting for the store (one Meituan, one
            # Ele.me: their confirms go to the simulator, which knows them; a mini-program one), then
            # long-polls for more. The scheduler's first tick has run every job meanwhile.
            assert wait_for(lambda: output.read_bytes().count(b"-> accepted") >= 3, 120), output.read_text()
            assert wait_for(lambda: b"embedded scheduler: jobs" in output.read_bytes(), 60), output.read_text()
            os.killpg(stack.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole group
            returncode = stack.wait(timeout=120)
        finally:
            if stack.poll() is None:  # the test failed before its SIGINT: stop the stack all the same
                stack.terminate()
                try:
                    stack.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    os.killpg(stack.pid, signal.SIGKILL)  # its children get SIGTERM (PR_SET_PDEATHSIG)
                    stack.wait()

    text = output.read_text()
    assert returncode == 0, text
    assert text.rstrip().endswith("stopped"), text
    assert [line for line in text.splitlines() if "stopping " in line] == [
        "stopping scheduler", "stopping pos-client", "stopping web", "stopping simulator"]
    for bad in ("SIGKILL", "Perhaps out of memory", "Traceback", "KeyboardInterrupt", '"level": "WARNING"',
                '"level": "ERROR"', "did not stop"):
        assert bad not in text, text
