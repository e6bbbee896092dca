"""End to end in headless Chromium: the tenant pages, the browsable API, the API docs, the Django admin.

A real server (``manage.py runserver``) runs on a free port against the test
database, with the demo data committed; Chromium reaches it at
``acme.localhost:<port>`` and friends (``*.localhost`` is loopback in Chromium).
Screenshots of each step go to tests/screenshots/ (git-ignored).

Needs Debian's Chromium (``/usr/bin/chromium``) and the ``playwright`` package. Without
them these tests are skipped, unless REQUIRE_BROWSER_TESTS=1 (CI), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts import services
from accounts.models import ApiKey, TenantUser, WorkspaceSettings
from core.jobs.models import Job
from core.models import AuditEvent
from tenants.models import Tenant
from tests.conftest import DEMO_PASSWORD, Worker

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
E2E_USERNAME = "dana.e2e"
FILLER_PREFIX = "filler.e2e"


def _missing_browser() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def chromium_ready() -> None:
    missing = _missing_browser()
    if missing is None:
        return
    if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
        pytest.fail(f"browser tests required (REQUIRE_BROWSER_TESTS=1) but {missing}")
    pytest.skip(f"browser tests skipped: {missing}")


def _database_url() -> str:
    """The test database as a URL for the server process (a Unix socket directory goes in the host part)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    # A readiness wait, not an assertion on speed: the server checks the project first.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited early:\n{log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"the server did not start listening:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(chromium_ready, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """``runserver`` on a free port against the test database; yields the port."""
    assert connection.settings_dict["NAME"].startswith("test_")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.process_settings",
        "DEBUG": "false",
        "CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_listening(process, port, log)
        yield str(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def job_worker(server, tmp_path_factory) -> Iterator[Worker]:
    """A job worker next to the server, as ``make run`` starts one."""
    worker = Worker(tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def browser(server) -> Iterator:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    # Playwright's sync API keeps an event loop on this thread, and Django then refuses ORM calls
    # (set-up and clean-up here). They stay sequential on this one thread, so allow them meanwhile.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


LIFECYCLE_EVENTS = ["tenant.export", "tenant.delete", "tenant.restore", "workspace.export"]


def _restore_demo_data() -> None:
    """Undo what the browser tests commit, so the rest of the suite sees the seed's data."""
    connection.set_schema_to_public()
    Tenant.objects.filter(pk="globex").update(active=True, deleted_at=None, purge_after=None)
    Job.objects.filter(tenant_id__in=["acme", "globex"]).delete()
    for schema in ("acme", "globex"):
        with schema_context(schema):
            AuditEvent.objects.filter(action__in=LIFECYCLE_EVENTS).delete()
    with schema_context("acme"):
        ApiKey.objects.all().delete()
        TenantUser.objects.filter(username__startswith="dana").delete()
        WorkspaceSettings.objects.filter(pk=1).update(display_name="", theme_color="#2563eb", timezone="UTC")
    with schema_context("globex"):
        TenantUser.objects.filter(username__startswith=FILLER_PREFIX).delete()
        TenantUser.objects.filter(name="Eleventh Person").delete()


@pytest.fixture
def demo_data(committed_db) -> Iterator[None]:
    """The demo tenants, with globex filled up to its plan's limit of 10 users (committed)."""
    _restore_demo_data()
    with schema_context("globex"):
        globex = Tenant.objects.get(pk="globex")
        for number in range(1, 10):
            services.create_user(globex, name=f"Filler {number}", username=f"{FILLER_PREFIX}{number}")
    try:
        yield
    finally:
        _restore_demo_data()


class Steps:
    """A browser page plus numbered screenshots of each step."""

    def __init__(self, browser, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 850})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.name = name
        self.count = 0

    def shot(self, label: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{self.count:02d}-{label}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def steps(browser, request) -> Iterator:
    made: list[Steps] = []

    def new(name: str) -> Steps:
        made.append(Steps(browser, name))
        return made[-1]

    yield new
    for each in made:
        each.close()


def _admin_sign_in(page, server: str) -> None:
    page.goto(f"http://localhost:{server}/django-admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("input[type=submit]")


def _admin_action(page, tenant_id: str, action: str) -> None:
    """Select one tenant in the admin's list and run an action on it."""
    page.check(f"input[name=_selected_action][value={tenant_id}]")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def _sign_in(page, url: str, username: str) -> None:
    page.goto(url)
    page.fill("#id_username", username)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")


def test_tenant_admin_manages_users_and_meets_the_plan_limit(server, demo_data, steps):
    from playwright.sync_api import expect

    acme = steps("acme")
    page = acme.page
    page.goto(f"http://localhost:{server}/")
    expect(page.locator("h1")).to_have_text("Tenant platform")
    expect(page.locator("a[href='/django-admin/']")).to_be_visible()
    acme.shot("public-home")

    page.goto(f"http://acme.localhost:{server}/")
    expect(page).to_have_url(f"http://acme.localhost:{server}/login?next=/")
    expect(page.locator("h1")).to_have_text("Sign in to Acme Corporation")
    acme.shot("sign-in")

    page.fill("#id_username", "alice")
    page.fill("#id_password", "not-her-password")
    page.click("button[type=submit]")
    expect(page.locator(".notice.error")).to_contain_text("correct username and password")
    acme.shot("wrong-password")

    _sign_in(page, f"http://acme.localhost:{server}/login", "alice")
    expect(page.locator("h1")).to_have_text("Acme Corporation")
    expect(page.locator("#plan")).to_have_text("enterprise")
    expect(page.locator("#user-count")).to_have_text("2 of 100")
    expect(page.locator("#features")).to_contain_text("analytics")
    acme.shot("dashboard")

    page.fill("#id_name", "Dana Scully")
    page.fill("#id_new_username", E2E_USERNAME)
    page.fill("#id_email", "dana@example.com")
    page.click("#add-user button[type=submit]")
    expect(page.locator(".notice.success")).to_have_text(f"Added Dana Scully ({E2E_USERNAME}) as member.")
    expect(page.locator("#user-count")).to_have_text("3 of 100")
    expect(page.locator(f"tr[data-username='{E2E_USERNAME}']")).to_contain_text("dana@example.com")
    acme.shot("user-added")

    page.fill("#id_name", "Dana Again")
    page.fill("#id_new_username", E2E_USERNAME)
    page.click("#add-user button[type=submit]")
    expect(page.locator("#error")).to_have_text(f"Username '{E2E_USERNAME}' is taken")
    expect(page.locator("#id_name")).to_have_value("Dana Again")
    acme.shot("username-taken")

    row = page.locator(f"tr[data-username='{E2E_USERNAME}']")
    row.locator("select[name=role]").select_option("admin")
    row.locator("button", has_text="Change role").click()
    expect(page.locator(".notice.success")).to_have_text("Dana Scully is now admin.")
    page.locator(f"tr[data-username='{E2E_USERNAME}'] button", has_text="Remove").click()
    expect(page.locator(".notice.success")).to_have_text(f"Removed Dana Scully ({E2E_USERNAME}).")
    expect(page.locator("#user-count")).to_have_text("2 of 100")
    acme.shot("user-removed")

    page.fill("#id_display_name", "Acme Portal")
    page.fill("#id_theme_color", "#0f766e")
    page.click("#workspace-settings button[type=submit]")
    expect(page.locator(".notice.success")).to_have_text("Workspace settings saved.")
    expect(page.locator("header.brand .name")).to_have_text("Acme Portal")
    expect(page.locator("header.brand")).to_have_css("background-color", "rgb(15, 118, 110)")
    acme.shot("themed")
    page.fill("#id_theme_color", "teal")
    page.click("#workspace-settings button[type=submit]")
    expect(page.locator("#error")).to_have_text("Invalid theme_color: Use a colour of the form #rrggbb.")
    page.fill("#id_display_name", "")
    page.fill("#id_theme_color", "#2563eb")
    page.click("#workspace-settings button[type=submit]")
    expect(page.locator("header.brand .name")).to_have_text("Acme Corporation")

    page.locator("header button", has_text="Sign out").click()
    expect(page.locator("h1")).to_have_text("Sign in to Acme Corporation")
    page.goto(f"http://acme.localhost:{server}/")
    expect(page).to_have_url(f"http://acme.localhost:{server}/login?next=/")

    globex = steps("globex")
    page = globex.page
    _sign_in(page, f"http://globex.localhost:{server}/login", "charlie")
    expect(page.locator("h1")).to_have_text("Globex Inc.")
    expect(page.locator("#user-count")).to_have_text("10 of 10")
    page.fill("#id_name", "Eleventh Person")
    page.click("#add-user button[type=submit]")
    expect(page.locator("#error")).to_have_text("User limit reached (10 users on starter plan)")
    expect(page.locator("#user-count")).to_have_text("10 of 10")
    globex.shot("plan-limit")
    with schema_context("globex"):
        assert TenantUser.objects.count() == 10


def test_browsable_api_and_docs(server, demo_data, steps):
    from playwright.sync_api import expect

    api = steps("api")
    page = api.page
    page.goto(f"http://acme.localhost:{server}/api/users")
    expect(page.locator("#tenant-name")).to_have_text("Acme Corporation")
    page.click("text=Log in")
    expect(page.locator("h3")).to_have_text("Acme Corporation API")
    page.fill("#id_username", "alice")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    expect(page).to_have_url(f"http://acme.localhost:{server}/api/users")
    expect(page.locator(".response-info")).to_contain_text('"username": "bob"')
    api.shot("browsable-api")
    page.click("#api-logout")
    expect(page.locator("text=Log in")).to_be_visible()
    expect(page.locator(".response-info")).to_contain_text("Authentication credentials were not provided")

    page.goto(f"http://localhost:{server}/api/docs/")
    expect(page.locator(".swagger-ui .title").first).to_contain_text("Tenant platform API")
    expect(page.locator(".opblock-summary-path", has_text="/api/users/{user_id}").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/admin/tenants/{tenant_id}/suspend").first).to_be_visible()
    api.shot("api-docs")


def test_platform_admin_suspends_and_reactivates_a_tenant(server, demo_data, steps):
    from playwright.sync_api import expect

    admin = steps("admin")
    page = admin.page
    _admin_sign_in(page, server)
    page.click("a[href='/django-admin/tenants/tenant/']")
    expect(page.locator("#result_list")).to_contain_text("globex.localhost")
    admin.shot("tenants")

    _admin_action(page, "globex", "suspend")
    expect(page.locator("#tenants-to-suspend")).to_contain_text("globex: Globex Inc.")
    admin.shot("confirm-suspend")
    page.click("input[value='Yes, suspend']")
    expect(page.locator(".messagelist")).to_contain_text("Suspended 1 tenant(s): globex")
    admin.shot("suspended")

    visitor = steps("visitor")
    visitor.page.goto(f"http://globex.localhost:{server}/")
    expect(visitor.page.locator("h1")).to_have_text("This workspace is suspended")
    visitor.shot("globex-suspended")
    _sign_in(visitor.page, f"http://acme.localhost:{server}/login", "alice")
    expect(visitor.page.locator("h1")).to_have_text("Acme Corporation")
    visitor.shot("acme-still-working")
    visitor.page.goto(f"http://nowhere.localhost:{server}/")
    expect(visitor.page.locator("h1")).to_have_text('No workspace called "nowhere"')
    visitor.shot("unknown-workspace")

    _admin_action(page, "globex", "activate")
    expect(page.locator(".messagelist")).to_contain_text("Reactivated 1 tenant(s): globex")
    admin.shot("reactivated")

    visitor.page.goto(f"http://globex.localhost:{server}/")
    expect(visitor.page.locator("h1")).to_have_text("Sign in to Globex Inc.")
    visitor.shot("globex-back")


def test_tenant_admin_creates_copies_and_revokes_an_api_key(server, demo_data, steps):
    import json
    import urllib.error
    import urllib.request

    def me_with(key: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server}/api/me", headers={"Authorization": f"Bearer {key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["id"] == "acme" and response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    alice = steps("api-key")
    page = alice.page
    origin = f"http://acme.localhost:{server}"
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    _sign_in(page, f"{origin}/login", "alice")
    page.fill("#id_key_name", "Nightly export")
    page.check("input[name=scopes][value=write]")
    page.fill("#id_expires_in_days", "30")
    page.click("#create-key button[type=submit]")
    page.wait_for_selector("#new-key")
    alice.shot("key-shown-once")
    secret = page.input_value("#new-key-value")
    assert secret.startswith("tk_acme_")
    page.click("#copy-key")
    page.wait_for_function("document.getElementById('copy-key').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert me_with(secret) == 200

    page.goto(f"{origin}/")
    alice.shot("key-listed")
    assert secret not in page.content()
    row = page.locator("#api-keys tbody tr", has_text="Nightly export")
    assert "read" in row.inner_text() and "write" in row.inner_text()
    prefix = row.locator("code").inner_text().rstrip("…")
    assert prefix.startswith("tk_acme_") and secret.startswith(prefix + "_")
    row.locator("button", has_text="Revoke").click()
    page.wait_for_selector("text=Revoked the key Nightly export")
    alice.shot("key-revoked")
    assert me_with(secret) == 401


def test_platform_admin_exports_deletes_and_restores_a_tenant(server, job_worker, demo_data, steps):
    from playwright.sync_api import expect

    admin = steps("lifecycle")
    page = admin.page
    _admin_sign_in(page, server)
    page.goto(f"http://localhost:{server}/django-admin/tenants/tenant/")
    expect(page.locator("#result_list th.column-state")).to_be_visible()

    _admin_action(page, "globex", "export_tenants")
    expect(page.locator(".messagelist")).to_contain_text("Queued the export of 1 tenant(s): globex")
    page.goto(f"http://localhost:{server}/django-admin/tenants/tenant/globex/change/")
    # The progress bar follows the job, which the worker runs; the download link shows once it is done.
    expect(page.locator(".field-exports a.job-download")).to_be_visible(timeout=60_000)
    expect(page.locator(".field-exports progress")).to_have_attribute("value", "100")
    admin.shot("export-done")
    with page.expect_download() as download:
        page.click(".field-exports a.job-download")
    assert download.value.suggested_filename.startswith("globex-")
    assert download.value.suggested_filename.endswith(".tar.gz")

    page.goto(f"http://localhost:{server}/django-admin/tenants/tenant/")
    _admin_action(page, "globex", "delete_tenants")
    expect(page.locator("#tenants-to-delete_tenants")).to_contain_text("globex: Globex Inc.")
    admin.shot("confirm-delete")
    page.click("input[value='Yes, delete']")
    expect(page.locator(".messagelist")).to_contain_text("Deleted 1 tenant(s): globex")
    expect(page.locator("#result_list tr", has_text="globex")).to_contain_text("deleted (purged after")
    admin.shot("deleted")

    visitor = steps("lifecycle-visitor")
    visitor.page.goto(f"http://globex.localhost:{server}/")
    expect(visitor.page.locator("h1")).to_have_text('No workspace called "globex"')
    visitor.shot("globex-deleted")

    _admin_action(page, "globex", "restore_tenants")
    page.click("input[value='Yes, restore']")
    expect(page.locator(".messagelist")).to_contain_text("Restored 1 tenant(s): globex.")
    admin.shot("restored")
    _sign_in(visitor.page, f"http://globex.localhost:{server}/login", "charlie")
    expect(visitor.page.locator("h1")).to_have_text("Globex Inc.")
    visitor.shot("globex-back")


def test_tenant_admin_exports_the_workspace(server, job_worker, demo_data, steps):
    from playwright.sync_api import expect

    acme = steps("workspace-export")
    page = acme.page
    _sign_in(page, f"http://acme.localhost:{server}/login", "alice")
    page.click("#export-workspace button")
    expect(page.locator(".notice.success")).to_contain_text("queued")
    expect(page.locator("#exports a.job-download").first).to_be_visible(timeout=60_000)
    expect(page.locator("#exports .job-status").first).to_have_text("done")
    acme.shot("export-done")
    with page.expect_download() as download:
        page.click("#exports a.job-download >> nth=0")
    assert download.value.suggested_filename.startswith("acme-workspace-")
    assert download.value.suggested_filename.endswith(".zip")
