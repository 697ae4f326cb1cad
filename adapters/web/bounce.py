"""Bounces that come back by mail, after the SMTP server had accepted the message.

Each mail's envelope sender (what becomes its Return-Path) is `bounces+<token>@domain`
(VERP; KOMINN_MAIL_BOUNCES = `bounces@domain`), the token a keyed hash of the recipient's
address: a bounce can only stop mail to the address it was sent to, never someone's a
stranger names. The MTA pipes what arrives at that address into `kominn mail bounce`.

A bounce is read as RFC 3464 says (the standard `email` package): a `multipart/report;
report-type=delivery-status` whose `message/delivery-status` part has one block per recipient.
`Action: failed` with a `Status: 5.x.x` is permanent (the address does not work: mail to it
stops, as the stop link does, and the delivery is marked failed); `4.x.x` or `Action:
delayed` is transient (the reporting MTA keeps trying: logged, nothing changes).
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.message import Message

TOKEN_LENGTH = 16
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}")


def token(secret: str, address: str) -> str:
    """The VERP token of a recipient: 16 hex characters of an HMAC (fits any local part)."""
    digest = hmac.new(secret.encode(), b"kominn.bounce:" + address.casefold().encode(),
                      hashlib.sha256)
    return digest.hexdigest()[:TOKEN_LENGTH]


def envelope_sender(bounces: str, secret: str, address: str) -> str:
    """`bounces+<token>@domain` for a mail to `address`."""
    local, _, domain = bounces.rpartition("@")
    return f"{local}+{token(secret, address)}@{domain}"


def token_of(recipient: str) -> str | None:
    """The token in the address a bounce was delivered to (`bounces+<token>@domain`)."""
    local = email.utils.parseaddr(recipient)[1].rpartition("@")[0]
    _, plus, extension = local.partition("+")
    extension = extension.casefold()
    return extension if plus and re.fullmatch(r"[0-9a-f]{16}", extension) else None


@dataclass(frozen=True)
class Failure:
    """One recipient's outcome in a delivery status notification."""

    address: str
    status: str  # e.g. "5.1.1"
    diagnostic: str

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class Report:
    """What a bounce says: the failed recipients, the addresses of the original message's
    To (when it came back with it), and where the bounce was delivered."""

    failures: tuple[Failure, ...]
    original_to: tuple[str, ...]
    delivered_to: tuple[str, ...]


def parse(raw: bytes) -> Report | None:
    """The delivery status notification in a mail; None when it is none (an auto-reply, a
    person writing to the bounce address)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        return None
    failures: list[Failure] = []
    original_to: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            failures.extend(_failures(part))
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            original_to.extend(_original_to(part))
    if not failures:
        return None
    delivered = [*message.get_all("Delivered-To", []), *message.get_all("X-Original-To", []),
                 *message.get_all("To", [])]
    return Report(tuple(failures), tuple(original_to),
                  tuple(address for _, address in email.utils.getaddresses(delivered)))


def _failures(part: Message) -> list[Failure]:
    """message/delivery-status: the per-message block, then one block per recipient (the
    package parses the blocks as header sets)."""
    blocks = part.get_payload()
    found = []
    for block in blocks[1:] if isinstance(blocks, list) else []:
        if not isinstance(block, Message):
            continue
        action = str(block.get("Action", "")).strip().casefold()
        status = _STATUS.match(str(block.get("Status", "")).strip())
        recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        _, _, address = recipient.partition(";")
        if action not in ("failed", "delayed") or status is None or not address.strip():
            continue
        code = status.group(0) if action == "failed" else "4" + status.group(0)[1:]
        found.append(Failure(_plain(address), code,
                             " ".join(str(block.get("Diagnostic-Code", "")).split())[:300]))
        original = str(block.get("Original-Recipient") or "").partition(";")[2]
        if original.strip() and _plain(original) != _plain(address):
            found.append(Failure(_plain(original), code, found[-1].diagnostic))
    return found


def _original_to(part: Message) -> list[str]:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        headers = inner[0] if isinstance(inner, list) and inner else None
    else:  # text/rfc822-headers: the headers as text
        headers = email.message_from_string(str(part.get_payload(decode=False)))
    if not isinstance(headers, Message):
        return []
    return [address for _, address in email.utils.getaddresses(headers.get_all("To", []))
            if address]


def _plain(address: str) -> str:
    return email.utils.parseaddr(address.strip())[1] or address.strip()


def matching(report: Report, secret: str, recipient: str | None) -> list[Failure]:
    """The failures this bounce may act on: those whose address the VERP token names. The
    token is the envelope recipient's extension (the MTA's ORIGINAL_RECIPIENT, else the
    bounce's Delivered-To/To). A failed recipient that is not the one mailed (a forward) is
    matched through the original message's To."""
    tokens = {found for found in (token_of(candidate) for candidate in
                                  [recipient or "", *report.delivered_to]) if found}
    if not tokens:
        return []
    chosen: list[Failure] = []
    for failure in report.failures:
        if token(secret, failure.address) in tokens:
            chosen.append(failure)
    if not chosen:
        for address in report.original_to:
            if token(secret, address) in tokens:
                worst = max(report.failures, key=lambda f: f.permanent)
                chosen.append(Failure(address, worst.status, worst.diagnostic))
    return chosen
