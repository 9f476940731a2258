from tests.web.browser import browser, server  # noqa: F401 - fixtures for the browser tests
