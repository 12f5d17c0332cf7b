"""Notification channels behind one interface; `enabled_notifiers` picks them from Settings."""

from __future__ import annotations

from backend.config import Settings
from backend.notifiers.base import DeliveryError, Notifier
from backend.notifiers.apprise import AppriseNotifier
from backend.notifiers.console import ConsoleNotifier
from backend.notifiers.email import EmailNotifier
from backend.notifiers.telegram import TelegramNotifier
from backend.notifiers.webhook import WebhookNotifier

__all__ = ["DeliveryError", "Notifier", "ConsoleNotifier", "EmailNotifier", "TelegramNotifier", "WebhookNotifier",
           "AppriseNotifier", "enabled_notifiers"]


def enabled_notifiers(settings: Settings) -> list[Notifier]:
    """Console always; Telegram when both of its keys are set (SPEC §2, §6); email, webhook, apprise if set (§10)."""
    notifiers: list[Notifier] = [ConsoleNotifier(settings.log_file)]
    if settings.telegram_enabled:
        notifiers.append(TelegramNotifier(settings.telegram_bot_token, settings.telegram_chat_id,
                                          settings.telegram_api_base_url, settings.notify_timeout_seconds,
                                          settings.notify_language))
    if settings.webhook_enabled:
        notifiers.append(WebhookNotifier(settings.webhook_url, settings.webhook_secret,
                                         settings.notify_timeout_seconds, settings.webhook_ca_file))
    if settings.email is not None:
        notifiers.append(EmailNotifier(settings.email, settings.notify_timeout_seconds, settings.notify_language))
    if settings.apprise_urls:
        notifiers.append(AppriseNotifier(settings.apprise_urls, settings.notify_timeout_seconds,
                                         settings.notify_language))
    return notifiers
