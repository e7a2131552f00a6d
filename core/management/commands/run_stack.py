"""Start every process of the system and stop them together (Ctrl-C).

With REDIS_URL: web (gunicorn), a Celery worker and Celery beat.
Without: web and the embedded scheduler (tasks run inline).
Apps add their own demo processes (simulator, POS client) through
settings.STACK_EXTRA_PROCESSES; in their argv ``{python}`` stands for this
interpreter and ``{web_url}`` for the web process's root URL (from ``--bind``).

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only
this command. It then stops the children one at a time, each with ONE SIGTERM (the
signal every one of them shuts down cleanly on: gunicorn and the Celery worker
finish what they are doing), in ``STOP_ORDER``: first what makes new work (beat, the
scheduler, the POS client), then web, then the worker, and the simulator last, so
that nothing the others still send it fails. A child still
running ``STOP_TIMEOUT`` seconds after its SIGTERM has its whole group killed. A
second Ctrl-C does not interrupt that. Exits 0 when it was asked to stop, 1 when a
child exited on its own (which stops everything). On Linux a child also gets SIGTERM
when this command dies without stopping it (killed with SIGKILL).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

# The order children are stopped in; children not named here go first.
STOP_ORDER = ("beat", "scheduler", "pos-client", "web", "worker", "simulator")
STOP_TIMEOUT = 30.0  # seconds a child has to exit after its SIGTERM
POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when run_stack itself dies, even by SIGKILL,
    since a child in a group of its own would outlive it. Elsewhere a no-op."""
    try:
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def web_url(bind: str) -> str:
    """The URL the other processes reach web at: ``0.0.0.0:8000`` -> ``http://127.0.0.1:8000``."""
    host, _sep, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


class Command(BaseCommand):
    help = "Run web, jobs and the demo processes together."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.WEB_BIND)
        parser.add_argument("--web-workers", type=int, default=settings.WEB_WORKERS)

    def processes(self, *, bind: str, web_workers: int) -> dict[str, list[str]]:
        python = sys.executable
        procs = {
            # config.gunicorn ends the POS long polls on SIGTERM, so a stop takes no SIGKILL;
            # no control socket: it is one path per user, shared by every gunicorn on the machine.
            "web": [python, "-m", "gunicorn", "config.wsgi:application", "--config", "python:config.gunicorn",
                    "--bind", bind, "--workers", str(web_workers), "--threads", "8", "--access-logfile", "-",
                    "--graceful-timeout", "5", "--no-control-socket"],
        }
        if settings.REDIS_URL:
            procs["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                               "--concurrency", "2"]
            procs["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        else:
            procs["scheduler"] = [python, "manage.py", "run_scheduler"]
        placeholders = {"{python}": python, "{web_url}": web_url(bind)}
        for name, argv in settings.STACK_EXTRA_PROCESSES.items():
            procs[name] = [placeholders.get(part, part) for part in argv]
        return procs

    def handle(self, *args, bind: str, web_workers: int, **options):
        stop = threading.Event()
        asked = threading.Event()

        def on_signal(*_):
            asked.set()
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        running: dict[str, subprocess.Popen] = {}
        failed = False
        try:
            for name, argv in self.processes(bind=bind, web_workers=web_workers).items():
                if stop.is_set():
                    break
                self.stdout.write(f"starting {name}: {' '.join(argv)}")
                # A group of its own: the terminal's Ctrl-C is ours to pass on, once, in order.
                running[name] = subprocess.Popen(argv, cwd=settings.BASE_DIR, process_group=0,
                                                 preexec_fn=_die_with_parent)
            if not stop.is_set():
                self.stdout.write(self.style.SUCCESS(
                    f"back-office: {web_url(bind)}/admin/  ·  API docs: {web_url(bind)}/api/docs/"))
            while not stop.is_set():
                for name, proc in running.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping everything")
                        failed = True
                        stop.set()
                        break
                stop.wait(POLL_SECONDS)
        finally:
            self._stop_all(running)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed and not asked.is_set():
            sys.exit(1)
        self.stdout.write("stopped")

    def _stop_all(self, running: dict[str, subprocess.Popen]) -> None:
        def rank(name: str) -> int:
            return STOP_ORDER.index(name) if name in STOP_ORDER else -1

        for name in sorted(running, key=rank):
            proc = running[name]
            if proc.poll() is not None:
                continue
            self.stdout.write(f"stopping {name}")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop within {STOP_TIMEOUT:g}s; killing it")
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
