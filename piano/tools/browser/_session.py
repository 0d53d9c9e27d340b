"""`BrowserSession`: one thread's headless Chromium, as an actor on a thread of its own.

Selenium blocks, so the session is a `ThreadActor`: its actions run one at a time on its own
thread and never stall the event loop. Actions are the messages of `_actions` (``Visit``,
``Click``, ``Type``, ``Find``, ``ReadText``, ``Screenshot``, ``CurrentUrl``, ``RunScript``,
``Back``), sent with ``await ref.call(action, timeout=...)``.

Guarantees:
- an action that cannot be done on the page (no such element, bad selector, script error, a
  page that does not load within `page_load_timeout`) fails the call with `BrowserActionError`
  and the session carries on, on the same page;
- if the browser dies (Chromium crashed or was killed, chromedriver gone), the action's caller
  gets `BrowserCrashed` saying the action was lost, and the actor then crashes, so its
  supervisor restarts it with a fresh browser (the crash is in the log as a crash report; the
  profile and any leftover processes are removed in `terminate`);
- a session not used for `idle_timeout` seconds stops with reason ``"normal"`` (its
  transient child spec is then not restarted) and its browser is closed;
- every request the browser makes goes through the session's `GuardProxy`, which refuses
  loopback, private, link-local and metadata addresses unless `allowed_networks` lists them
  (the page then shows the proxy's 403 with the reason);
- the browser runs in a sandbox of its own (`_sandbox`): none of its ports is reachable by
  another local user, it sends no UDP to the host, and it dies with the daemon;
- `terminate` always quits the browser, ends its sandbox and proxy and removes its directory
  (the profile with it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    InvalidArgumentException,
    InvalidSelectorException,
    JavascriptException,
    MoveTargetOutOfBoundsException,
    NoAlertPresentException,
    NoSuchElementException,
    NoSuchFrameException,
    ScreenshotException,
    StaleElementReferenceException,
    TimeoutException,
    UnexpectedAlertPresentException,
)
from selenium.webdriver.common.by import By as SeleniumBy
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from actors import NOREPLY, Caller, ThreadActor
from piano.tools.browser._actions import (
    Back,
    BrowserAction,
    BrowserActionError,
    BrowserCrashed,
    By,
    Click,
    CurrentUrl,
    ElementInfo,
    Find,
    PageInfo,
    ReadText,
    RunScript,
    Screenshot,
    Type,
    Visit,
)
from piano.tools.browser._config import BrowserConfig
from piano.tools.browser._proxy import GuardProxy
from piano.tools.browser._sandbox import Browser, start_browser

__all__ = ["BrowserSession"]

_PAGE_ERRORS = (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    InvalidArgumentException,
    InvalidSelectorException,
    JavascriptException,
    MoveTargetOutOfBoundsException,
    NoAlertPresentException,
    NoSuchElementException,
    NoSuchFrameException,
    ScreenshotException,
    StaleElementReferenceException,
    TimeoutException,
    UnexpectedAlertPresentException,
)
_BY = {"css": SeleniumBy.CSS_SELECTOR, "xpath": SeleniumBy.XPATH}
_DESCRIBE = """
return arguments[0].map((e, i) => {
  const attrs = {};
  for (const name of ["id", "name", "class", "href", "type", "value", "placeholder",
                      "aria-label", "role", "src", "alt"]) {
    const v = name === "value" ? e.value : e.getAttribute(name);
    if (v !== null && v !== undefined && v !== "") attrs[name] = String(v).slice(0, 300);
  }
  return {index: i, tag: e.tagName.toLowerCase(),
          text: (e.innerText || "").trim().slice(0, 300), attributes: attrs,
          displayed: !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length)};
});
"""


def _message(exc: Exception) -> str:
    text = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:500]


def _plain(value: Any, depth: int = 0) -> Any:
    """A script result as JSON-able data (elements are described, not returned)."""
    if isinstance(value, WebElement):
        return {"element": value.tag_name, "text": value.text[:300]}
    if depth > 20:
        return repr(value)[:300]
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)[:300]


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


class BrowserSession(ThreadActor):
    """One thread's browser; see the module documentation."""

    def __init__(
        self,
        thread_id: str,
        config: BrowserConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thread_id = thread_id
        self.config = config
        self.clock = clock
        self.browser: Browser | None = None
        self.proxy: GuardProxy | None = None
        self.browser_pid: int | None = None
        self.last_used = clock()
        self.actions = 0

    def describe(self) -> str:
        return f"browser of thread {self.thread_id}, {self.actions} actions, pid {self.browser_pid}"

    # -- callbacks (on the session's thread) ----------------------------------------------------

    def init(self) -> None:
        self.trap_exits = True  # so a supervisor's shutdown runs `terminate`, closing the browser
        self.browser = start_browser(self.config, label=self.thread_id)
        self.proxy = self.browser.proxy
        pids = self.browser.pids()
        self.browser_pid = pids[0] if pids else None
        self.last_used = self.clock()
        self.send_after(self.config.idle_timeout, "idle")
        self.log.info("browser.started", thread_id=self.thread_id, pid=self.browser_pid)

    def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "pids":
            return self.browser.pids() if self.browser is not None else []
        if not isinstance(message, BrowserAction):
            return super().handle_call(message, caller)
        self.last_used = self.clock()
        self.actions += 1
        try:
            return self._perform(message)
        except BrowserActionError as exc:
            caller.fail(exc)
        except _PAGE_ERRORS as exc:
            caller.fail(BrowserActionError(f"{type(message).__name__} failed: {_message(exc)}"))
        except Exception as exc:
            if self._healthy():
                error = BrowserActionError(f"{type(message).__name__} failed: {_message(exc)}")
                caller.fail(error)
                return NOREPLY
            crash = BrowserCrashed(
                f"the browser crashed during {type(message).__name__} ({_message(exc)}); "
                "the action was lost and a fresh browser is starting: retry from a visit"
            )
            caller.fail(crash)
            raise crash from exc
        return NOREPLY

    def handle_info(self, message: Any) -> None:
        if message != "idle":
            super().handle_info(message)
            return None
        idle_for = self.clock() - self.last_used
        if idle_for >= self.config.idle_timeout:
            self.log.info("browser.idle_close", thread_id=self.thread_id, idle_for=idle_for)
            self.stop("normal")
        else:
            self.send_after(self.config.idle_timeout - idle_for, "idle")
        return None

    def terminate(self, reason: object) -> None:
        browser, self.browser = self.browser, None
        if browser is not None:
            browser.close()

    # -- actions --------------------------------------------------------------------------------

    def _healthy(self) -> bool:
        """True if the browser still answers (a failure was the page's, not the browser's)."""
        if self.browser is None or self.browser_pid is None or not _pid_alive(self.browser_pid):
            return False
        try:
            self._driver().execute_script("return 1")
        except Exception:
            return False
        return True

    def _driver(self) -> WebDriver:
        assert self.browser is not None
        assert self.browser.driver is not None
        return self.browser.driver

    def _page(self) -> PageInfo:
        driver = self._driver()
        return PageInfo(url=driver.current_url, title=driver.title)

    def _element(self, selector: str, by: By) -> WebElement:
        try:
            return self._driver().find_element(_BY[by], selector)
        except NoSuchElementException:
            raise BrowserActionError(f"no element matches {by} selector {selector!r}") from None

    def _perform(self, action: BrowserAction) -> Any:
        driver = self._driver()
        match action:
            case Visit(url=url):
                scheme = urlsplit(url).scheme.lower()
                if scheme not in ("http", "https"):
                    raise BrowserActionError(f"only http(s) URLs can be visited, not {scheme!r}")
                try:
                    driver.get(url)
                except TimeoutException:
                    raise BrowserActionError(
                        f"{url} did not finish loading within {self.config.page_load_timeout:g}s"
                    ) from None
                return self._page()
            case Click(selector=selector, by=by):
                self._element(selector, by).click()
                return self._page()
            case Type(selector=selector, text=text, submit=submit, clear=clear, by=by):
                element = self._element(selector, by)
                if clear:
                    element.clear()
                element.send_keys(text + (Keys.ENTER if submit else ""))
                return self._page()
            case Find(selector=selector, limit=limit, by=by):
                elements = driver.find_elements(_BY[by], selector)[: max(0, limit)]
                if not elements:
                    return []
                described = driver.execute_script(_DESCRIBE, elements)
                return [ElementInfo(**entry) for entry in described]
            case ReadText(selector=selector, by=by):
                return self._element(selector, by).text[: self.config.text_limit]
            case Screenshot():
                return driver.get_screenshot_as_png()
            case CurrentUrl():
                return self._page()
            case RunScript(script=script, args=args):
                return _plain(driver.execute_script(script, *args))
            case Back():
                driver.back()
                return self._page()
        raise BrowserActionError(f"unknown browser action {type(action).__name__}")
