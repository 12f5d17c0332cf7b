"""Which URLs apprise can use: asked by the settings (APPRISE_URLS, a named channel's `urls:`) and by the channel.

apprise is imported only when a URL is asked about: it loads every plugin it has, which a backend
without apprise channels (and the gunicorn master) should not pay for.
"""

from __future__ import annotations

import logging

# Apprise logs every target's URL (tokens in paths included) at DEBUG, and an unparseable one whole
# at ERROR. Its lines never reach our handlers: each failure's reason comes back with the result,
# redacted, instead. Set here, before apprise is first asked anything.
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())  # else Python's last-resort handler prints WARNINGs


def apprise_for(urls: list[str] | tuple[str, ...]):
    """An apprise.Apprise holding every URL, kept in memory only (no files written), or None if one is not usable."""
    import apprise  # its plugins load here, when first needed

    manager = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    return manager if all(manager.add(url) for url in urls) else None


def unusable_urls(urls: list[str] | tuple[str, ...]) -> list[int]:
    """The 1-based positions of URLs apprise cannot use (an unknown scheme, a malformed URL)."""
    return [index for index, url in enumerate(urls, 1) if apprise_for([url]) is None]
