"""Presses of Telegram's ACK / Resolve buttons (SPEC §10), read by long-polling getUpdates in one process at a time.

The holder of the `telegram-updates` lease asks getUpdates for callback queries from the offset stored in
`telegram_offset`. Each update is applied in one transaction that also moves the offset past it, with a
conditional UPDATE: so a restart or a takeover neither loses an update (the offset only moves with its
change) nor applies one twice (a second process finds the offset already past it). Telegram forgets an
update once getUpdates is asked from beyond it, which happens on the next poll, after the commit.

A press counts only when its chat and message are a SENT delivery of that very alert (notification_logs'
chat_id and message_id, whichever Telegram channel sent it); anything else is answered "refused" and
changes nothing. After the commit the press is answered (answerCallbackQuery) and the message edited to
say who did what and when, with the buttons left that still make sense. Those two calls are made once:
a crash between the commit and them leaves the alert changed and the message as it was.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from telegram import Bot, CallbackQuery
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from backend import store, store_telegram
from backend.background import BackgroundLoop
from backend.database import write_transaction
from backend.leases import Lease
from backend.notifiers.telegram import keyboard
from backend.notifiers.telegram_buttons import (Outcome, acted_line, buttons, decide_press, parse_press,
                                                press_answer, who_pressed)
from backend.rules import AlertStatus
from backend.service import AlertService

log = logging.getLogger(__name__)

POLL_SECONDS = 10  # getUpdates' long-poll timeout; closing the app cancels a poll in hand
IDLE_SECONDS = 0.2  # between two polls
ERROR_PAUSE_SECONDS = 5.0  # between two polls after Telegram failed to answer
LEASE_SECONDS = 30.0  # renewed every third of it, before each poll: a poll never outlasts it
LEASE_RETRY_SECONDS = 2.0  # how often a process without the lease asks for it
REQUEST_SECONDS = 10.0  # connect, write and read allowance of each call (getUpdates adds its poll to read)


class PollFailed(Exception):
    """Telegram did not answer getUpdates; the reason, token scrubbed."""


class TelegramUpdates(BackgroundLoop):
    """A thread that applies button presses from Telegram, in the one process holding the lease."""

    what = "Telegram getUpdates"
    quiet_errors = (*BackgroundLoop.quiet_errors, PollFailed)

    def __init__(self, service: AlertService, token: str, base_url: str, language: str,
                 poll_seconds: int = POLL_SECONDS):
        super().__init__("telegram-updates", IDLE_SECONDS, Lease(service.engine, "telegram-updates", LEASE_SECONDS))
        for name in ("httpx", "httpcore", "telegram"):  # their request lines carry the token (as telegram.py)
            logging.getLogger(name).setLevel(logging.WARNING)
        self.service = service
        self.engine = service.engine
        self._token = token
        self.base_url = base_url
        self.language = language
        self.poll_seconds = poll_seconds
        self._poll_lock = threading.Lock()  # guards _poll_loop / _poll_task, which close() cancels
        self._poll_loop: asyncio.AbstractEventLoop | None = None
        self._poll_task: asyncio.Task | None = None
        self.start()

    def __repr__(self) -> str:  # never show the token
        return f"TelegramUpdates(base_url={self.base_url!r})"

    def run_once(self) -> int | None:
        """One long poll if this process holds the lease: how many updates it applied, or None."""
        if not self.holds(retry_seconds=LEASE_RETRY_SECONDS):
            return None
        try:
            applied = asyncio.run(self._cancellable())
        except TelegramError as exc:
            self.interval_seconds = ERROR_PAUSE_SECONDS  # Telegram down or refusing: do not hammer it
            raise PollFailed(self._scrub(exc.message)) from None
        self.interval_seconds = IDLE_SECONDS
        return applied

    def close(self) -> None:
        """Cancel the poll in hand, then stop as every background loop does (giving the lease up)."""
        self._stopping.set()
        with self._poll_lock:
            if self._poll_loop is not None and self._poll_task is not None:
                self._poll_loop.call_soon_threadsafe(self._poll_task.cancel)
        super().close()

    async def _cancellable(self) -> int | None:
        with self._poll_lock:
            if self._stopping.is_set():
                return None
            self._poll_loop, self._poll_task = asyncio.get_running_loop(), asyncio.current_task()
        try:
            return await self._poll()
        except asyncio.CancelledError:
            return None  # closing
        finally:
            with self._poll_lock:
                self._poll_loop = self._poll_task = None

    async def _poll(self) -> int:
        with self.engine.connect() as conn:
            offset = store_telegram.next_update_id(conn)
        requests = [HTTPXRequest(connect_timeout=REQUEST_SECONDS, read_timeout=REQUEST_SECONDS,
                                 write_timeout=REQUEST_SECONDS, pool_timeout=REQUEST_SECONDS) for _ in range(2)]
        bot = Bot(self._token, base_url=self.base_url, request=requests[0], get_updates_request=requests[1])
        try:
            updates = await bot.get_updates(offset=offset, timeout=self.poll_seconds,
                                            allowed_updates=["callback_query"])
            applied = 0
            for update in updates:
                applied += await self._apply(bot, update.update_id, update.callback_query)
            return applied
        finally:
            for request in requests:
                await request.shutdown()

    async def _apply(self, bot: Bot, update_id: int, query: CallbackQuery | None) -> int:
        """Apply one update with its offset in one transaction, then answer and edit; 1 if this process applied it."""
        press = parse_press(query.data) if query is not None else None
        message = query.message if query is not None else None
        by = who_pressed(query.from_user.id, query.from_user.username) if query is not None else ""
        outcome, alert = None, None
        with write_transaction(self.engine) as conn:
            if not store_telegram.claim_update(conn, update_id):
                return 0  # another process applied it already
            if press is not None and message is not None and store_telegram.was_sent_to(
                    conn, press.alert_id, str(message.chat.id), str(message.message_id)):
                alert = store.get_alert(conn, press.alert_id)
                outcome = decide_press(AlertStatus(alert["status"]), press.action)
                if outcome.new_status is not None:
                    alert = self.service.change_alert_status_in(conn, press.alert_id, outcome.new_status, by)
        if query is None:
            return 1  # not a press (allowed_updates lets none through): nothing to answer
        if outcome is None:
            where = f"chat {message.chat.id} message {message.message_id}" if message is not None else "no message"
            log.warning("Telegram press refused: %r from %s (%s) matches no alert sent there", query.data, by, where)
            await self._call(bot.answer_callback_query(query.id, text=press_answer("refused", self.language)))
            return 1
        log.info("Telegram press %r by %s on alert %d: %s", query.data, by, alert["id"],
                 outcome.result.replace("_", " "))
        await self._call(bot.answer_callback_query(query.id, text=press_answer(outcome.result, self.language)))
        if outcome.new_status is not None and getattr(message, "text", None):
            await self._call(bot.edit_message_text(self._edited(message.text, outcome, alert, by),
                                                   chat_id=message.chat.id, message_id=message.message_id,
                                                   reply_markup=keyboard(buttons(alert["id"], outcome.new_status))))
        return 1

    def _edited(self, text: str, outcome: Outcome, alert: dict, by: str) -> str:
        """The message's text with one line added saying who did what and when."""
        at = alert["acknowledged_at"] if outcome.new_status is AlertStatus.ACK else alert["resolved_at"]
        return f"{text}\n{acted_line(outcome.result, by, at, self.language)}"

    async def _call(self, call) -> None:
        """Answer or edit once: the alert has changed already, so a failure here is only logged."""
        try:
            await call
        except TelegramError as exc:
            log.warning("Telegram could not be told of a press: %s", self._scrub(exc.message))

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>")
