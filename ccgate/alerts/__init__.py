"""Alerts to the operator: webhook, Telegram, WeCom, Feishu, DingTalk."""
