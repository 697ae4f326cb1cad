"""`kominn jobs …`: the follow-up outbox for operators.

`jobs list` shows what is due, scheduled, sent and failed per kind of notice; `jobs run-due
[--now ISO-TIME]` queues and delivers what is due at that moment, then exits — follow-ups
without a running `kominn run` (cron), and a way to check the rules at a chosen time.
Delivery uses the channels that are configured (Telegram and/or Slack); terminal notices wait
for the person's next `kominn chat`.

`jobs requeue ID … | --all [--kind K] [--channel C]` gives notices the dispatcher parked as
`failed` (attempts used up, or a permanent error such as a long Telegram outage) a fresh start:
back to `pending`, due now, attempts 0, error cleared. It is one conditional UPDATE that only
moves rows still `failed`, so a dispatcher running at the same time is never confused, and it
leaves alone rows of a person who has been erased (they are reported as skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, tzinfo
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session

from bot.localtime import parse_moment
from storage import outbox
from storage.models import utcnow

FormatOption = Annotated[str, typer.Option("--format", help="table or json")]
COLUMNS = ("due", "scheduled", "sending", "sent", "failed", "cancelled")


def register(app: typer.Typer) -> None:
    jobs = typer.Typer(no_args_is_help=True, help="Scheduled follow-ups (the outbox).")
    jobs.command("list")(jobs_list)
    jobs.command("run-due")(jobs_run_due)
    jobs.command("requeue")(jobs_requeue)
    app.add_typer(jobs, name="jobs")


def jobs_list(
    fmt: FormatOption = "table",
    failed: Annotated[bool, typer.Option("--failed", help="also list the failed rows")] = False,
) -> None:
    """Notices per kind: due now, scheduled later, sent, failed (parked after retries)."""
    from bot.cli import common as cli

    cli.check_format(fmt)
    with Session(cli.database()) as session:
        counts = outbox_counts(session, utcnow())
        parked = failed_rows(session) if failed else []
    if fmt == "json":
        cli.print_json({"kinds": counts, **({"failed": parked} if failed else {})})
        return
    table = Table("kind", *COLUMNS)
    for kind, row in counts.items():
        table.add_row(kind, *(str(row[c]) for c in COLUMNS))
    out = cli.console()
    out.print(table if counts else "outbox is empty")
    if parked:
        rows = Table("id", "kind", "channel", "attempts", "last error")
        for item in parked:
            rows.add_row(str(item["id"]), item["kind"], item["channel"],
                         str(item["attempts"]), item["last_error"] or "")
        out.print(rows)


def outbox_counts(session: Session, now: datetime) -> dict[str, dict[str, int]]:
    """{kind: {due, scheduled, sending, sent, failed, cancelled}}; pending rows split by
    whether they are due at `now`."""
    counts: dict[str, dict[str, int]] = {}
    for kind, state, n in outbox.counts_by_kind(session, now):
        row = counts.setdefault(kind, dict.fromkeys(COLUMNS, 0))
        row[state if state in COLUMNS else "failed"] += n
    return dict(sorted(counts.items()))


def failed_rows(session: Session) -> list[dict[str, Any]]:
    rows = outbox.failed(session)
    return [{"id": r.id, "kind": r.kind, "channel": r.channel, "attempts": r.attempts,
             "last_error": r.last_error, "created_at": r.created_at.isoformat()} for r in rows]


def run_moment(value: str | None, zone: tzinfo) -> datetime:
    """--now: an ISO time (without an offset local time in KOMINN_TIMEZONE), default now."""
    return parse_moment(value, zone) if value else utcnow()


def jobs_run_due(
    now: Annotated[str | None, typer.Option(
        "--now", help="ISO time to run at (default: now; no offset = KOMINN_TIMEZONE)")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Queue and deliver every follow-up due at --now, then exit."""
    from bot.cli import common as cli

    cli.check_format(fmt)
    settings = cli.settings()
    try:
        moment = run_moment(now, settings.zone)
    except ValueError:
        cli.fail(f"--now must be an ISO time like 2026-05-01T09:00, not {now!r}")
    summary = asyncio.run(_run_due(cli.runtime(), moment))
    if fmt == "json":
        cli.print_json(summary)
        return
    out = cli.console()
    out.print(f"run at {summary['now']}")
    table = Table("", "count")
    for rule, n in summary["created"].items():
        table.add_row(f"queued: {rule}", str(n))
    for key in ("sent", "retried", "failed", "cancelled", "postponed"):
        table.add_row(key, str(summary[key]))
    for channel, n in summary["waiting"].items():
        table.add_row(f"due, no sender here: {channel}", str(n))
    out.print(table)


async def _run_due(runtime: Any, moment: datetime) -> dict[str, Any]:
    from bot.followups.scheduler import run_due

    async with contextlib.AsyncExitStack() as stack:
        senders = await _senders(runtime.settings, stack)
        summary = await run_due(runtime, senders, moment)
    with Session(runtime.db) as session:
        summary["waiting"] = outbox.waiting_by_channel(session, moment, list(senders))
    return summary


async def _senders(settings: Any, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
    """A sender for every configured channel (the terminal has none: it pulls)."""
    senders: dict[str, Any] = {}
    if settings.telegram_bot_token:
        from adapters.telegram import sender as telegram_sender

        senders["telegram"] = await stack.enter_async_context(
            telegram_sender.open_sender(settings))
    if settings.slack_bot_token:
        from adapters.slack import sender as slack_sender

        senders["slack"] = await stack.enter_async_context(slack_sender.open_sender(settings))
    return senders



def jobs_requeue(
    ids: Annotated[list[int] | None, typer.Argument(
        help="outbox row ids (see `kominn jobs list --failed`)", show_default=False)] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="every failed row (narrow with --kind/--channel)")] = False,
    kind: Annotated[str | None, typer.Option("--kind", help="only this kind of notice")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="only this channel")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Give failed follow-ups a fresh start: pending, due now, attempts 0."""
    from bot.cli import common as cli
    from storage.db import transaction

    cli.check_format(fmt)
    if not ids and not every:
        cli.fail("give the ids to requeue, or --all (see kominn jobs list --failed)")
    if ids and every:
        cli.fail("give the ids to requeue or --all, not both")
    with transaction(cli.database()) as session:
        summary = requeue_failed(session, utcnow(), ids or None, kind=kind, channel=channel)
    if fmt == "json":
        cli.print_json(summary)
        return
    out = cli.console()
    moved = ", ".join(str(i) for i in summary["ids"])
    out.print(f"requeued: {summary['requeued']}" + (f" ({moved})" if moved else ""))
    if summary["skipped"]:
        table = Table("skipped id", "why")
        for item in summary["skipped"]:
            table.add_row(str(item["id"]), _why(item))
        out.print(table)


def requeue_failed(session: Session, now: datetime, ids: list[int] | None, *,
                   kind: str | None = None, channel: str | None = None) -> dict[str, Any]:
    """Move `failed` rows (these ids, or all when None; narrowed by kind/channel) back to
    `pending`, due `now`, with fresh attempts (`storage.outbox.requeue_failed`: one
    conditional UPDATE, never a row twice, never an erased person's); say which rows were
    skipped and why."""
    moved, rest = outbox.requeue_failed(session, now, ids, kind=kind, channel=channel)
    return {"requeued": len(moved), "ids": moved,
            "skipped": _skipped(session, rest, kind, channel)}


def _skipped(session: Session, ids: list[Any], kind: str | None,
             channel: str | None) -> list[dict[str, Any]]:
    """Why each of these rows did not move: unknown, not failed, another kind or channel, or
    addressed to an erased person (`changed`: on PostgreSQL a dispatcher may park a row as
    failed between the UPDATE and this look; running the command again takes it)."""
    found = outbox.with_erasure(session, ids)
    skipped: list[dict[str, Any]] = []
    for row_id in sorted(ids):
        if row_id not in found:
            skipped.append({"id": row_id, "reason": "unknown"})
            continue
        row, erased_at = found[row_id]
        item = {"id": row_id, "kind": row.kind, "channel": row.channel, "state": row.state}
        if row.state != outbox.FAILED:
            item["reason"] = "not_failed"
        elif kind and row.kind != kind:
            item["reason"] = "other_kind"
        elif channel and row.channel != channel:
            item["reason"] = "other_channel"
        elif erased_at is not None:
            item["reason"] = "erased"
        else:
            item["reason"] = "changed"
        skipped.append(item)
    return skipped


def _why(item: dict[str, Any]) -> str:
    return {"unknown": "no such outbox row",
            "not_failed": f"not failed (it is {item.get('state')})",
            "other_kind": f"kind is {item.get('kind')}",
            "other_channel": f"channel is {item.get('channel')}",
            "erased": "person erased: never sent",
            "changed": "became failed meanwhile: run again"}[item["reason"]]
