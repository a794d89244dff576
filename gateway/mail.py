"""Email to patrons over SMTP (plain text and HTML, in the patron's language).

smtplib blocks, so sending runs in a worker thread. A failure is logged and never changes what
the patron sees: the pages say the same thing whether or not a message went out.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from gateway.config import MailSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One email: who to, subject, and the two renderings of the same text."""

    to: str
    subject: str
    text: str
    html: str


class Mailer:
    """Sends messages with the configured SMTP server."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        """Whether an SMTP host is set."""
        return bool(self.settings.host)

    def _send(self, message: Message) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.from_address
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.security == "tls":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        with smtp:
            if s.security == "starttls":
                smtp.starttls(context=context)
            if s.user:
                smtp.login(s.user, s.password)
            smtp.send_message(mail)

    async def send(self, message: Message) -> bool:
        """Send; False (and a log line without the message's content) when it did not go."""
        if not self.configured:
            log.warning("mail: no SMTP host configured; a message to a patron was not sent")
            return False
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail: sending failed: %s", type(exc).__name__)
            return False
        return True
