"""End to end in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
installed by scripts/browser.sh) driven by Selenium against `kominn run` as a subprocess on
SQLite. A whole submission in /chat by keyboard only, the idea on the board with its status
before and after a moderator moves it, the status news arriving in an open chat, the chat
without JavaScript, and axe-core (installed by
scripts/browser.sh into tests/vendor/) finding no WCAG 2.0/2.1 A or AA violation on any page.

The tests share one server and run in file order (the submission makes KI-1).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web_server import KOMINN, free_port, kominn_run

pytestmark = pytest.mark.browser

AXE = Path(__file__).with_name("vendor") / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 20  # seconds an element may take to appear
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1024,900")

if not (CHROMIUM and CHROMEDRIVER and AXE.exists()):
    pytest.skip("run scripts/browser.sh first (chromium, chromium-driver, axe-core)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only once the browser is known to be there
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _browser(javascript: bool = True) -> tuple[WebDriver, str]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="kominn-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    prefs: dict[str, object] = {"intl.accept_languages": "nb-NO,nb"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service), profile


HOST_PORT = free_port()
HOST_ORIGIN = f"http://localhost:{HOST_PORT}"  # another origin than KomInn's 127.0.0.1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'kominn.db'}"
    env = {"KOMINN_MAX_MESSAGES_PER_MINUTE": "1000", "KOMINN_WEB_ORIGINS": HOST_ORIGIN}
    with kominn_run(url, env) as (base, _):
        yield base, url


@pytest.fixture(scope="module")
def municipality_site(server: tuple[str, str],
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The municipality's own page (another origin) with the one widget line."""
    base, _ = server
    folder = tmp_path_factory.mktemp("site")
    (folder / "index.html").write_text(
        '<!doctype html><html lang="nb"><head><title>Kommunen</title>'
        f'<script src="{base}/widget.js" defer></script></head>'
        "<body><main><h1>Velkommen til kommunen</h1></main></body></html>", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", HOST_PORT), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield HOST_ORIGIN + "/index.html"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver, profile = _browser()
    driver.set_script_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _log_entries(driver: WebDriver) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#log .msg"))


def _tab_to(driver: WebDriver, describe: str, matches: object) -> None:
    """Press Tab until the focused element is the one wanted (keyboard only)."""
    for _ in range(60):
        active = driver.switch_to.active_element
        if matches(active):  # type: ignore[operator]
            return
        active.send_keys(Keys.TAB)
    raise AssertionError(f"Tab never reached {describe}")


def _button(driver: WebDriver, label: str) -> None:
    """Tab to the bot's button `label`, press Enter, wait for the answer."""
    before = _log_entries(driver)
    _tab_to(driver, f"button {label!r}",
            lambda el: el.tag_name == "button" and el.text.strip() == label)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(driver, WAIT).until(lambda d: _log_entries(d) > before)


def _type(driver: WebDriver, text: str) -> None:
    """Tab to the message field, type, Enter sends."""
    before = _log_entries(driver)
    _tab_to(driver, "the message field", lambda el: el.get_attribute("id") == "message")
    driver.switch_to.active_element.send_keys(text, Keys.ENTER)
    WebDriverWait(driver, WAIT).until(lambda d: _log_entries(d) > before)


def test_whole_submission_by_keyboard(server: tuple[str, str], browser: WebDriver) -> None:
    base, _ = server
    browser.get(base + "/chat")
    assert browser.find_element(By.ID, "log").get_attribute("aria-live") == "polite"
    _button(browser, "Ny idé")
    _type(browser, "Flere benker ved Semsvannet")
    _type(browser, "Det trengs flere benker langs turstien rundt Semsvannet, så eldre kan hvile.")
    _button(browser, "Folkehelse")
    # The place step asks for typed text: the focus is in the field, not on "Hopp over".
    assert browser.switch_to.active_element.get_attribute("id") == "message"
    before = _log_entries(browser)
    browser.switch_to.active_element.send_keys("Hvalstad stasjon", Keys.ENTER)
    WebDriverWait(browser, WAIT).until(lambda d: _log_entries(d) > before)
    _button(browser, "Nei")
    assert "Hvalstad stasjon" in browser.find_element(By.ID, "log").text  # the summary
    _button(browser, "Send inn")
    assert "KI-1" in browser.find_element(By.ID, "log").text
    # /sprak changes the page's language too: the script shows the whole page again.
    try:
        _type(browser, "/sprak")
        _tab_to(browser, "button 'English'",
                lambda el: el.tag_name == "button" and el.text.strip() == "English")
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        # the page is replaced meanwhile: no element handle, and what fails mid-way is retried
        WebDriverWait(browser, WAIT, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script("return document.documentElement.lang") == "en")
        assert "Language set to English." in browser.find_element(By.ID, "log").text
    finally:  # the next tests share this browser (and its session) and read bokmål
        browser.get(base + "/chat?lang=nb")  # the page's link changes the chat's back
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nb"


def test_board_shows_the_idea_and_its_new_status(server: tuple[str, str],
                                                 browser: WebDriver) -> None:
    base, url = server
    browser.get(base + "/ideer")
    row = browser.find_element(By.CSS_SELECTOR, ".ideas li")
    assert "KI-1" in row.text and "Nytt" in row.text
    moved = subprocess.run([KOMINN, "ideas", "set-status", "KI-1", "useful"],
                           env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                           text=True, timeout=60)
    assert moved.returncode == 0, moved.stderr
    browser.get(base + "/ideer/KI-1")
    assert "Nyttig" in browser.find_element(By.CSS_SELECTOR, ".facts").text


def test_chat_without_javascript(server: tuple[str, str]) -> None:
    base, _ = server
    driver, profile = _browser(javascript=False)
    try:
        driver.get(base + "/chat")
        field = driver.find_element(By.ID, "message")
        field.send_keys("/ny", Keys.ENTER)  # a plain form post, then the page again
        WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: "tittel" in d.find_element(By.ID, "log").text.casefold())
        assert driver.current_url.endswith("/chat")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_widget_on_the_municipality_site(server: tuple[str, str], browser: WebDriver,
                                         municipality_site: str) -> None:
    base, _ = server
    browser.get(municipality_site)
    link = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.ID, "kominn-widget"))[0]
    assert link.text == "Har du en idé?"
    assert link.get_attribute("href") == base + "/chat?lang=nb"


@pytest.mark.parametrize("path", ["/chat", "/ideer", "/ideer/KI-1", "/rapport"])
def test_no_accessibility_violations(server: tuple[str, str], browser: WebDriver,
                                     path: str) -> None:
    base, _ = server
    browser.get(base + path)
    browser.execute_script(AXE.read_text(encoding="utf-8"))
    result = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag',
                                     values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
           .then(r => done(r.violations.map(v => ({id: v.id, help: v.help,
                 nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))),
                 e => done([{id: 'axe-error', help: String(e)}]));
    """)
    assert result == [], json.dumps(result, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("path", ["/chat", "/ideer", "/ideer/KI-1", "/rapport"])
def test_no_horizontal_scrolling_at_320_css_pixels(server: tuple[str, str], browser: WebDriver,
                                                   path: str) -> None:
    """WCAG 1.4.10 reflow: 320 CSS pixels wide (what 400 % zoom of a 1280 px window, or 200 %
    of 640 px, leaves) needs no sideways scrolling."""
    base, _ = server
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 320, "height": 640, "deviceScaleFactor": 1, "mobile": False})
    try:
        browser.get(base + path)
        widths = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth];")
        assert widths[1] == 320
        assert widths[0] <= widths[1], f"{path} is {widths[0]} px wide at 320"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_location_from_the_browser(server: tuple[str, str], browser: WebDriver) -> None:
    """At the place step the script offers the browser's position (geolocation, which asks
    the person: here the permission is granted and the position set through DevTools)."""
    base, url = server
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": base, "permissions": ["geolocation"]})
    browser.execute_cdp_cmd("Emulation.setGeolocationOverride", {
        "latitude": 59.833, "longitude": 10.434, "accuracy": 10})
    browser.get(base + "/chat")
    _type(browser, "/ny")
    _type(browser, "Gatelys langs skoleveien")
    _type(browser, "Skoleveien er mørk om vinteren; barna trenger gatelys hele veien.")
    _button(browser, "Areal og transport")
    _button(browser, "Del posisjonen min")
    _button(browser, "Nei")
    if browser.find_elements(By.XPATH, "//button[normalize-space()='Min idé er ny']"):
        _button(browser, "Min idé er ny")
    _button(browser, "Send inn")
    assert "KI-2" in browser.find_element(By.ID, "log").text
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT latitude, longitude FROM idea WHERE id = 2")).one() \
            == (59.833, 10.434)
    engine.dispose()


def test_status_news_in_the_open_chat(server: tuple[str, str], browser: WebDriver) -> None:
    """A new citizen who wants news submits; a moderator moves the idea (the CLI: another
    process); the chat, left open, shows the news in its log without a reload."""
    base, url = server
    browser.delete_all_cookies()  # somebody new
    browser.get(base + "/chat")
    _button(browser, "Ny idé")
    _type(browser, "Drikkefontene i sentrum")
    _type(browser, "En drikkefontene på torget, så folk kan fylle flasken sin om sommeren.")
    _button(browser, "Folkehelse")
    _button(browser, "Hopp over")
    _button(browser, "Ja")  # follow-ups: no KOMINN_SMTP_URL, so they come to the chat
    if browser.find_elements(By.XPATH, "//button[normalize-space()='Min idé er ny']"):
        _button(browser, "Min idé er ny")
    _button(browser, "Send inn")
    refs = re.findall(r"KI-\d+", browser.find_element(By.ID, "log").text)
    assert refs, browser.find_element(By.ID, "log").text
    browser.execute_script("window.kominnNoReload = true;")  # a reload would forget it
    moved = subprocess.run([KOMINN, "ideas", "set-status", refs[-1], "useful"],
                           env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                           text=True, timeout=60)
    assert moved.returncode == 0, moved.stderr
    news = WebDriverWait(browser, WAIT).until(lambda d: [
        entry for entry in d.find_elements(By.CSS_SELECTOR, "#log .msg.bot")
        if "Nyttig" in entry.text and refs[-1] in entry.text])
    assert news
    log = browser.find_element(By.ID, "log")
    assert log.get_attribute("role") == "log" and log.get_attribute("aria-live") == "polite"
    assert browser.execute_script("return window.kominnNoReload === true;")
    # The session cookie gone (blocked, or cleared): the script's post is refused, and the
    # form is posted plainly so that the server's page says why, in the person's language.
    browser.delete_all_cookies()
    browser.find_element(By.ID, "message").send_keys("/hjelp", Keys.ENTER)
    WebDriverWait(browser, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Meldingen ble ikke sendt")
    assert "informasjonskapsler" in browser.find_element(By.ID, "main").text
