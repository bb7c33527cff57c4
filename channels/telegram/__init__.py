"""The Telegram channel: webhook (channel.py), update reading, formatting, Bot API client, set-up.

credentials.yml names it `channels.telegram.TelegramChannel`.
"""

from channels.telegram.channel import TelegramChannel

__all__ = ["TelegramChannel"]
