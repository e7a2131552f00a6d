"""Start every process of the system and stop them together (Ctrl-C).

With REDIS_URL: web (gunicorn), a Celery worker and Celery beat.
Without: web and the embedded scheduler (tasks run inline).
Apps add their own demo processes (simulator, POS client) through
settings.STACK_EXTRA_PROCESSES.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run web, jobs and the demo processes together."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("WEB_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))

    def processes(self, *, bind: str, web_workers: int) -> dict[str, list[str]]:
        python = sys.executable
        procs = {
            "web": [python, "-m", "gunicorn", "config.wsgi:application", "--bind", bind,
                    "--workers", str(web_workers), "--threads", "8", "--access-logfile", "-",
                    # long polls (POS feed) must not keep workers alive past our own stop
                    "--graceful-timeout", "5"],
        }
        if settings.REDIS_URL:
            procs["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                               "--concurrency", "2"]
            procs["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]
        else:
            procs["scheduler"] = [python, "manage.py", "run_scheduler"]
        for name, argv in getattr(settings, "STACK_EXTRA_PROCESSES", {}).items():
            procs[name] = [python if part == "{python}" else part for part in argv]
        return procs

    def handle(self, *args, bind: str, web_workers: int, **options):
        running: dict[str, subprocess.Popen] = {}
        for name, argv in self.processes(bind=bind, web_workers=web_workers).items():
            self.stdout.write(f"starting {name}: {' '.join(argv)}")
            running[name] = subprocess.Popen(argv, cwd=settings.BASE_DIR)
        self.stdout.write(self.style.SUCCESS(f"back-office: http://{bind}/admin/  ·  API docs: http://{bind}/api/docs/"))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in running.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping everything")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for proc in running.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in running.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
