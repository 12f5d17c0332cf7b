"""Apprise channel: one notify call to every APPRISE_URLS target (Slack, Discord, ntfy, …) (SPEC §10)."""

from __future__ import annotations

import re

import apprise

from backend.apprise_urls import apprise_for
from backend.messages import LANGUAGES, Notice, heading, telegram_text
from backend.notifiers.base import DeliveryError, Notifier
from backend.notifiers.redact import redact, url_secrets, where

_STATUS = re.compile(r"error=(\d{3})\b")


class AppriseNotifier(Notifier):
    """Sends the notice's text to every URL in one `Apprise.notify` call; any target failing fails the attempt."""

    channel = "APPRISE"

    def __init__(self, urls: list[str] | tuple[str, ...], timeout_seconds: float, language: str = LANGUAGES[0]):
        self._urls = tuple(urls)
        self._secrets = [secret for url in urls for secret in url_secrets(url)]
        self.timeout_seconds = timeout_seconds
        self.language = language
        self._apprise = apprise_for(self._urls)  # load_settings / the targets file checked that each is usable

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
