"""Apprise channel: one notify call to every APPRISE_URLS target (Slack, Discord, ntfy, …) (SPEC §10)."""

from __future__ import annotations

import logging
import re

import apprise

from backend.messages import LANGUAGES, Notice, heading, telegram_text
from backend.notifiers.base import DeliveryError, Notifier
from backend.notifiers.redact import redact, url_secrets, where

# Apprise logs every target's URL (tokens in paths included) at DEBUG, and an unparseable one whole
# at ERROR. Its lines never reach our handlers: each failure's reason comes back with the result,
# redacted, instead.
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())  # else Python's last-resort handler prints WARNINGs
_STATUS = re.compile(r"error=(\d{3})\b")


def _manager(urls: list[str] | tuple[str, ...]) -> apprise.Apprise | None:
    """An Apprise holding every URL, kept in memory only (no files written), or None if one is not usable."""
    manager = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    return manager if all(manager.add(url) for url in urls) else None


def unusable_urls(urls: list[str] | tuple[str, ...]) -> list[int]:
    """The 1-based positions of URLs apprise cannot use (an unknown scheme, a malformed URL)."""
    return [index for index, url in enumerate(urls, 1) if _manager([url]) is None]


class AppriseNotifier(Notifier):
    """Sends the notice's text to every URL in one `Apprise.notify` call; any target failing fails the attempt."""

    channel = "APPRISE"

    def __init__(self, urls: list[str] | tuple[str, ...], timeout_seconds: float, language: str = LANGUAGES[0]):
        self._urls = tuple(urls)
        self._secrets = [secret for url in urls for secret in url_secrets(url)]
        self.timeout_seconds = timeout_seconds
        self.language = language
        self._apprise = _manager(self._urls)  # load_settings / the targets file checked that each is usable

    def __repr__(self) -> str:  # never the URLs: their paths are tokens
        return f"AppriseNotifier(targets={[where(url) for url in self._urls]!r})"

    def send(self, notice: Notice) -> str | None:
        """One notify call to all targets; None on success, else DeliveryError naming each failed target."""
        if self._apprise is None:
            raise DeliveryError("apprise: a URL is not usable (check APPRISE_URLS or the channel's urls)")
        failure = notice.notice_type.value in ("ERROR", "WARNING")
        title = heading(notice, self.language)
        text = telegram_text(notice, self.language)
        body = text[len(title):].lstrip("\n") if text.startswith(title) else text  # the heading is the title
        result = self._apprise.notify(body=body, title=title,
                                      notify_type=apprise.NotifyType.FAILURE if failure else apprise.NotifyType.SUCCESS,
                                      timeout=self.timeout_seconds)
        if result:
            return None
        failed, codes = [], []
        for service in result:  # in dispatch order, which need not be the URLs' order: named by service
            if service:
                continue
            said = " ".join(entry.message for entry in service.logs() if entry.level in ("WARNING", "ERROR"))
            codes += [int(code) for code in _STATUS.findall(said)]
            failed.append(f"{service.name}: {said or 'failed'}")
        reason = f"apprise {len(failed)} of {len(self._urls)} target(s) failed: " + "; ".join(failed)
        raise DeliveryError(redact(reason, self._secrets), codes[-1] if codes else None)
