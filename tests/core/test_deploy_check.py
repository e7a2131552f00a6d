"""`manage.py check --deploy` with exactly the production environment documented in
docs/operations.md ("Production environment") prints no warning at all; the
development defaults keep `make run` on plain http://127.0.0.1:8000 working."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent.parent
NO_ISSUES = "System check identified no issues (0 silenced)."


def documented_production_environment() -> dict[str, str]:
    """The NAME=value lines of the first sh block under "## Production environment",
    each ``<...>`` placeholder filled with a random string of its own."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("\n## Production environment\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL).group(1)
    environment = {}
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _equals, value = line.partition("=")
        environment[name] = re.sub(r"<[^>]+>", lambda _match: secrets.token_urlsafe(50), value)
    return environment


def run_deploy_check(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={"PATH": os.environ.get("PATH", ""), **environment},
        capture_output=True, text=True, timeout=300,
    )


def test_the_documented_environment_sets_every_production_setting():
    environment = documented_production_environment()

    assert {"SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_PROXY_SSL", "TRUSTED_PROXY_COUNT",
            "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
            "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "WXPAY_API_KEY", "OMS_APP_SECRET"} <= set(environment)
    assert environment["DEBUG"] == "false"
    assert len(environment["SECRET_KEY"]) >= 50


def test_deploy_check_with_the_documented_production_environment_prints_no_warning():
    result = run_deploy_check(documented_production_environment())

    assert sorted(set(re.findall(r"\((\w+\.[A-Z]\d+)\)", result.stderr))) == []  # the ids of any warning
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, NO_ISSUES, "")


def test_deploy_check_with_the_development_defaults_names_what_production_must_set():
    result = run_deploy_check({})

    found = set(re.findall(r"\((\w+\.W\d+)\)", result.stderr))
    assert result.returncode == 1
    assert {"security.W004", "security.W008", "security.W009", "security.W012", "security.W016",
            "core.W001", "core.W004"} <= found
    assert "OUTBOUND_URL_ALLOWED_HOSTS allows internal addresses: 127.0.0.1:8100" in result.stderr


@pytest.mark.parametrize(("hosts", "warned"), [
    (["waimaiopen.meituan.com", "open-api.shop.ele.me:443"], []),
    (["127.0.0.1:8100"], ["127.0.0.1:8100"]),
    (["localhost:*", "10.0.0.5", "[::1]:8100", "169.254.169.254", "api.example.com"],
     ["10.0.0.5", "169.254.169.254", "[::1]:8100", "localhost:*"]),
])
def test_the_outbound_hosts_check_names_internal_addresses(settings, hosts, warned):
    from core.checks import outbound_hosts_check

    settings.OUTBOUND_URL_ALLOWED_HOSTS = hosts

    found = outbound_hosts_check()

    assert [w.id for w in found] == (["core.W004"] if warned else [])
    if warned:
        assert found[0].msg == f"OUTBOUND_URL_ALLOWED_HOSTS allows internal addresses: {', '.join(warned)}."


@pytest.mark.django_db
def test_the_development_defaults_serve_plain_http():
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_with_the_production_settings_http_is_redirected_but_not_the_health_probes(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()

    plain = client.get("/admin/login/")
    probe = client.get("/ping/")
    through_tls = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})

    assert (plain.status_code, plain["Location"]) == (301, "https://testserver/admin/login/")
    assert probe.status_code == 200
    assert through_tls.status_code == 200
    assert through_tls["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
