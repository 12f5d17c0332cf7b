"""Telegram channel: a plain-text message to TELEGRAM_CHAT_ID via python-telegram-bot (SPEC §6), with ACK / Resolve
buttons on ERROR and WARNING (SPEC §10; presses are read by backend/telegram_updates.py)."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

# Opt in to PTB 22's coming RetryAfter.retry_after type (a timedelta) instead of a warning per 429.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from backend.messages import LANGUAGES, Notice, telegram_text
from backend.notifiers.base import DeliveryError, Notifier, Receipt
from backend.notifiers.telegram_buttons import notice_buttons


class TelegramNotifier(Notifier):
    """Sends through the Bot API at `base_url` (api.telegram.org, a self-hosted server, or a test fake)."""

    channel = "TELEGRAM"

    def __init__(self, token: str, chat_id: str, base_url: str, timeout_seconds: float,
                 language: str = LANGUAGES[0]):
        self._token = token
        self.language = language  # NOTIFY_LANGUAGE (SPEC §10)
        # httpx logs each request URL at INFO and PTB logs the API URL at DEBUG; both contain the
        # token, so keep them quiet whatever logging set-up serves this app (waitress, gunicorn…).
        for name in ("httpx", "httpcore", "telegram"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.chat_id = chat_id
        self.base_url = base_url
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:  # never show the token
        return f"TelegramNotifier(chat_id={self.chat_id!r}, base_url={self.base_url!r}, language={self.language!r})"

    def send(self, notice: Notice) -> Receipt:
        """Send one message and return Telegram's message_id and chat id; raise DeliveryError on failure."""
        status = notice.alert.get("status") if notice.alert else None
        markup = keyboard(notice_buttons(notice.alert_id, notice.notice_type, status))
        return asyncio.run(self._send(telegram_text(notice, self.language), markup))

    async def _send(self, text: str, markup: InlineKeyboardMarkup | None) -> Receipt:
        timeout = self.timeout_seconds
        request = _StatusRecordingRequest(connect_timeout=timeout, read_timeout=timeout,
                                          write_timeout=timeout, pool_timeout=timeout)
        bot = Bot(self._token, base_url=self.base_url, request=request)
        try:
            # One deadline for the whole attempt (httpx's timeouts apply per step: connect, write, each
            # read), so an attempt never outlasts the dispatcher's claim on its row.
            message = await asyncio.wait_for(
                bot.send_message(chat_id=self.chat_id, text=text, reply_markup=markup), timeout)
        except RetryAfter as exc:
            wait = exc.retry_after
            wait = wait.total_seconds() if isinstance(wait, timedelta) else wait
            raise DeliveryError(f"Telegram flood control: retry after {wait:g}s", 429, float(wait)) from None
        except (TimedOut, asyncio.TimeoutError):
            raise DeliveryError(f"Telegram did not answer within {timeout:g}s") from None
        except TelegramError as exc:
            status = request.last_status
            if status is None:
                raise DeliveryError(self._scrub(f"Telegram could not be reached: {exc.message}")) from None
            raise DeliveryError(self._scrub(f"Telegram answered {status}: {exc.message}"), status) from None
        finally:
            await request.shutdown()
        # The chat as Telegram names it (a number, even for TELEGRAM_CHAT_ID=@channel): a press must match it.
        return Receipt(str(message.message_id), str(message.chat.id))

    def _scrub(self, text: str) -> str:
        # The token is part of every Bot API URL; an error that quotes a URL must not leak it.
        return text.replace(self._token, "<token>")


def keyboard(buttons: list[tuple[str, str]]) -> InlineKeyboardMarkup | None:
    """One row of inline buttons from (label, callback_data) pairs; None for no buttons."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data) for label, data in buttons]])


class _StatusRecordingRequest(HTTPXRequest):
    """PTB's HTTPX transport, remembering the last HTTP status so a failed row can store it."""

    last_status: int | None = None

    async def do_request(self, *args, **kwargs):
        code, payload = await super().do_request(*args, **kwargs)
        self.last_status = code
        return code, payload
