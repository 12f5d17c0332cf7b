"""The one small interface every notification channel implements (SPEC §6)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from backend.messages import Notice


class DeliveryError(Exception):
    """One failed attempt. The dispatcher decides whether to try again."""

    def __init__(self, reason: str, response_code: int | None = None, retry_after_seconds: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.response_code = response_code
        self.retry_after_seconds = retry_after_seconds  # the channel asked us to wait this long


@dataclass(frozen=True)
class Receipt:
    """A sent message's id, and the chat it went to for a channel whose replies must come from there (Telegram)."""

    message_id: str
    chat_id: str | None = None

    @classmethod
    def of(cls, sent: "str | Receipt | None") -> "Receipt | None":
        """What a channel's send() returned, as a Receipt (None: the channel reported no message id)."""
        return sent if isinstance(sent, Receipt) or sent is None else cls(sent)


class Notifier(ABC):
    """A channel that can deliver a Notice once; retries and logging belong to the dispatcher."""

    channel: ClassVar[str]  # stored in notification_logs.channel

    @abstractmethod
    def send(self, notice: Notice) -> str | Receipt | None:
        """Deliver once; return the provider's message id (or a Receipt), if any, or raise DeliveryError."""
