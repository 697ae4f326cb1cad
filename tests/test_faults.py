"""Fault suite, part 1: `kominn run` killed with SIGKILL in the middle of a burst of 100
concurrent submissions through the fake Bot API, started again, and everyone finishes.

What must hold (the issue's words):
* every idea whose receipt was sent exists exactly once;
* no idea exists without a receipt;
* every dialog continues where it was (nobody is sent back, asked again or told "I don't
  understand"; everyone finishes with their one idea);
* no update is answered twice — except inside the at-least-once window, which is counted:
  the bot sent an update's replies but died before recording them as sent (`mark_delivered`),
  so the next start sends them again. Telegram has no idempotency key for sendMessage, so a
  process that can die between "sent" and "recorded" cannot avoid that window; it can only
  keep it short. The test checks that every duplicate is such a case (its update's replies
  were stored undelivered when the process died) and prints the figures.

The burst driver (`Burst`) is also used by `benchmarks/faults.py` for longer runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as DbEngine
from sqlmodel import Session, select

from bot.i18n import translator
from bot.runtime import Runtime
from storage.models import Idea, Person, ProcessedUpdate
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.test_telegram_webhook import free_port

ROOT = Path(__file__).resolve().parents[1]
T = translator("nb")
CITIZENS = 100
DOWN_SECONDS = 1.0  # how long the bot stays dead after each kill
FIRST_CITIZEN = 810_000


def _prefix(key: str, **params: object) -> str:
    """The fixed start of a bokmål text: what a citizen recognises an answer by."""
    return T(key, **params).split("{", 1)[0][:40]


ASK_TITLE = _prefix("submit.ask_title", min=5, max=120)
ASK_DESCRIPTION = _prefix("submit.ask_description", min=20, max=3000)
ASK_AREA = _prefix("submit.ask_area")
ASK_PLACE = _prefix("submit.ask_place")
ASK_CONSENT = _prefix("submit.ask_consent")
SIMILAR = _prefix("submit.similar_intro")
SUMMARY = T("submit.summary", title="", description="", area="", place="").split("\n")[0]
RECEIPT = T("submit.receipt_follow", ref="KI-0").split("KI-0")[0]
# Every answer a walking citizen may get; anything else means a dialog lost its place.
EXPECTED = (ASK_TITLE, ASK_DESCRIPTION, ASK_AREA, ASK_PLACE, ASK_CONSENT, SIMILAR, SUMMARY,
            RECEIPT)
AREAS = ("Vekst og utvikling", "Areal og transport", "Folkehelse", "Annet")
THINGS = ("lekeplass", "sykkelvei", "busstopp", "gatelys", "benker", "badeplass", "bibliotek",
          "skolevei", "hundepark", "ladestasjon", "gangbro", "skatepark", "grillplass")
PLACES = ("Asker sentrum", "Heggedal", "Vollen", "Slemmestad", "Holmen", "Vettre")


# --- the bot as a child process ----------------------------------------------------------------

class BotProcess:
    """`kominn run` polling the fake, as an operator starts it; each run's output kept."""

    def __init__(self, fake: FakeTelegramAPI, database_url: str, workdir: Path,
                 **env: str) -> None:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("TELEGRAM_", "SLACK_", "KOMINN_"))}
        self.env = {
            **base,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            # No overall cap: the burst is about faults, not about Telegram's 30 messages/s.
            "TELEGRAM_MAX_MESSAGES_PER_SECOND": "0",
            "KOMINN_HTTP_PORT": str(free_port()),
            "KOMINN_QUIET_HOURS": "off",
            **env,
        }
        self.fake = fake
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, wait: bool = True) -> None:
        """Start and (by default) wait until it polls: it has re-sent what a crash left."""
        self.runs += 1
        polls_before = self.fake.call_count("deleteWebhook")
        out = (self.workdir / f"run{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        if wait:
            self.fake.wait_for(lambda: self.fake.call_count("deleteWebhook") > polls_before
                               or self.proc is None or self.proc.poll() is not None, 60)
            assert self.proc.poll() is None, self.logs()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(20) == -signal.SIGKILL

    def stop(self) -> int:
        """SIGTERM: a graceful stop (uvicorn re-raises the signal after shutting down)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            self.ensure_dead()

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.workdir.glob("run*.log")))


# --- citizens ----------------------------------------------------------------------------------

@dataclass
class Walker:
    """One citizen walking the whole submission: acts as soon as the answer it waits for
    arrives, as fast as a script can (a closed loop, so the burst is as dense as it gets)."""

    user_id: int
    title: str
    description: str
    area: str
    place: str
    step: int = 0  # index into the script of the act done last (-1: nothing done yet)
    waiting_for: tuple[str, ...] = ()
    acted_at: int = 0  # the fake's seq when the last act was enqueued
    update_ids: dict[str, int] = field(default_factory=dict)  # answer prefix → update id
    ref: str | None = None
    inbox: list[dict[str, Any]] = field(default_factory=list)
    parked: bool = False  # answered, but held before its next act (`Burst.hold_at`)

    def script(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(kind, what, the answers it waits for)."""
        return [("say", "/ny", (ASK_TITLE,)),
                ("say", self.title, (ASK_DESCRIPTION,)),
                ("say", self.description, (ASK_AREA,)),
                ("press", self.area, (ASK_PLACE,)),
                ("say", self.place, (ASK_CONSENT,)),
                ("press", "Ja", (SUMMARY, SIMILAR)),
                ("press", "Send inn", (RECEIPT,))]

    @property
    def done(self) -> bool:
        return self.ref is not None


class Burst:
    """Many walkers at once against the fake; `pump()` moves every walker whose answer
    arrived. Counts updates sent, and keeps each chat's messages for the checks."""

    def __init__(self, fake: FakeTelegramAPI, citizens: int = CITIZENS,
                 first: int = FIRST_CITIZEN) -> None:
        self.fake = fake
        self.walkers = {first + n: self._walker(first + n, n) for n in range(citizens)}
        self.seq = 0
        self.updates_sent = 0
        self.answers = 0
        self.hold_at: int | None = None  # walkers wait before this step until `release()`

    @staticmethod
    def _walker(user_id: int, n: int) -> Walker:
        thing, place = THINGS[n % len(THINGS)], PLACES[n % len(PLACES)]
        return Walker(user_id, title=f"{thing.capitalize()} ved {place}, forslag {n}",
                      description=f"Jeg foreslår {thing} ved {place}; det trengs her. "
                                  f"Forslag nummer {n} fra en innbygger.",
                      area=AREAS[n % len(AREAS)], place=place, step=-1)

    def start(self) -> None:
        for walker in self.walkers.values():
            self._act(walker, 0)

    def _act(self, walker: Walker, step: int) -> None:
        kind, what, expect = walker.script()[step]
        walker.step, walker.waiting_for = step, expect
        walker.acted_at = self.fake.checkpoint()
        if kind == "say":
            update_id = self.fake.user_message(walker.user_id, what,
                                               first_name=f"Innbygger{walker.user_id}")
        else:
            update_id = self.fake.press_button(walker.user_id, what)
        for prefix in expect:
            walker.update_ids[prefix] = update_id
        self.updates_sent += 1

    def pull(self) -> None:
        for record in self.fake.sent(after=self.seq):
            self.seq = max(self.seq, record["seq"])
            walker = self.walkers.get(record["chat_id"])
            if walker is not None:
                walker.inbox.append(record)
                self.answers += 1

    def pump(self) -> None:
        """Read new answers; move every walker whose awaited answer has arrived."""
        self.pull()
        for walker in self.walkers.values():
            if walker.done or walker.parked:
                continue
            text = next((r["plain_text"] for r in walker.inbox if r["seq"] > walker.acted_at
                         and (r["plain_text"] or "").startswith(walker.waiting_for)), None)
            if text is None:
                continue
            if text.startswith(RECEIPT):
                walker.ref = next(w.rstrip(".,") for w in text.split() if w.startswith("KI-"))
            elif text.startswith(SIMILAR):
                walker.step = 5  # the similar-ideas offer: "Min idé er ny", then the summary
                walker.acted_at = self.fake.checkpoint()
                walker.waiting_for = (SUMMARY,)
                walker.update_ids[SUMMARY] = self.fake.press_button(walker.user_id,
                                                                    "Min idé er ny")
                self.updates_sent += 1
            elif self.hold_at is not None and walker.step + 1 >= self.hold_at:
                walker.parked = True
            else:
                self._act(walker, walker.step + 1)

    def release(self) -> None:
        """Walkers held at `hold_at` take their next step now (all at once)."""
        self.hold_at = None
        for walker in self.walkers.values():
            if walker.parked:
                walker.parked = False
                self._act(walker, walker.step + 1)

    @property
    def parked(self) -> int:
        return sum(1 for w in self.walkers.values() if w.parked)

    def run_until(self, condition: Callable[[], bool], timeout: float,
                  during: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"burst stuck: {self.progress()}\n{self.fake.describe()}")
            self.pump()
            if during is not None:
                during()
            time.sleep(0.02)
        self.pump()

    @property
    def finished(self) -> int:
        return sum(1 for w in self.walkers.values() if w.done)

    def progress(self) -> str:
        steps = Counter(w.step for w in self.walkers.values() if not w.done)
        return f"{self.finished} finished, mid-dialog by step {dict(sorted(steps.items()))}"

    # --- what the chats show ---------------------------------------------------------------

    def answered(self, update_ids: set[str]) -> list[tuple[str, float]]:
        """Of these updates, those whose answer has reached the chat: (update id, when)."""
        found = []
        for walker in self.walkers.values():
            for prefix, update_id in walker.update_ids.items():
                if str(update_id) not in update_ids:
                    continue
                times = [r["time"] for r in walker.inbox
                         if (r["plain_text"] or "").startswith(prefix)]
                if times:
                    found.append((str(update_id), min(times)))
        return found

    def duplicates(self) -> dict[tuple[int, str], int]:
        """(chat, answer prefix) → extra copies: one answer per update, so a text seen twice
        in a chat is an update answered twice."""
        extra: dict[tuple[int, str], int] = {}
        for walker in self.walkers.values():
            counts = Counter(r["plain_text"] for r in walker.inbox)
            for text, n in counts.items():
                if n > 1:
                    prefix = next((p for p in EXPECTED if (text or "").startswith(p)), text)
                    extra[(walker.user_id, prefix)] = n - 1
        return extra

    def unexpected(self) -> list[tuple[int, str]]:
        """Answers no step of the submission gives: a dialog that lost its place."""
        return [(w.user_id, r["plain_text"]) for w in self.walkers.values() for r in w.inbox
                if not (r["plain_text"] or "").startswith(EXPECTED)]


# --- the database side ---------------------------------------------------------------------

def undelivered_updates(db: DbEngine) -> set[str]:
    """Update ids whose replies are stored but not recorded as sent: the next start re-sends
    them (some may already have reached the person: the at-least-once window)."""
    with Session(db) as session:
        rows = session.exec(select(ProcessedUpdate.update_id).where(
            ProcessedUpdate.channel == "telegram",
            ProcessedUpdate.delivered_at.is_(None),  # type: ignore[union-attr]
            ProcessedUpdate.replies.is_not(None))).all()  # type: ignore[union-attr]
    return set(rows)


def ideas_by_author(db: DbEngine) -> dict[int, list[tuple[str, str]]]:
    """Telegram user id → [(ref, title)] of the ideas stored for them."""
    with Session(db) as session:
        rows = session.exec(select(Idea, Person).join(Person, Idea.author_id == Person.id)).all()
    found: dict[int, list[tuple[str, str]]] = {}
    for idea, person in rows:
        found.setdefault(int(person.channel_user_id), []).append((f"KI-{idea.id}", idea.title))
    return found


def receipts_sent(burst: Burst) -> dict[int, set[str]]:
    """Telegram user id → the refs named in receipts that reached them."""
    sent: dict[int, set[str]] = {}
    for walker in burst.walkers.values():
        for record in walker.inbox:
            text = record["plain_text"] or ""
            if text.startswith(RECEIPT):
                ref = next(w.rstrip(".,") for w in text.split() if w.startswith("KI-"))
                sent.setdefault(walker.user_id, set()).add(ref)
    return sent


def check_receipts_match_ideas(burst: Burst, db: DbEngine) -> int:
    """Every receipt sent names an idea that exists once, with the citizen's own title; the
    number of receipts whose idea is missing (lost ideas) is returned (and must be 0)."""
    stored = ideas_by_author(db)
    lost = 0
    for user_id, refs in receipts_sent(burst).items():
        mine = stored.get(user_id, [])
        for ref in refs:
            matches = [title for r, title in mine if r == ref]
            if len(matches) != 1 or matches[0] != burst.walkers[user_id].title:
                lost += 1
    return lost


@dataclass
class Figures:
    updates_sent: int = 0
    faults_injected: int = 0
    ideas_lost: int = 0
    duplicates_sent: int = 0
    finished: int = 0
    seconds: float = 0.0
    window: int = 0  # updates stored undelivered at the kills (the resend candidates)
    lost_while_down: int = 0  # receipts sent whose idea was missing while the bot was dead
    sent_unrecorded: int = 0  # of `window`: already answered when the bot died (re-sent)
    lags: list[float] = field(default_factory=list)  # how long ago those answers went out

    def line(self) -> str:
        return (f"updates sent {self.updates_sent}, faults injected {self.faults_injected}, "
                f"ideas lost {self.ideas_lost}, duplicates sent {self.duplicates_sent} "
                f"(at the kills {self.window} updates were stored undelivered, "
                f"{self.sent_unrecorded} of them already answered), "
                f"{self.finished} submissions finished in {self.seconds:.1f} s")


@dataclass
class Outcome:
    figures: Figures
    burst: Burst
    bot: BotProcess
    windows: set[str]  # update ids stored undelivered at any kill


def kill_during_burst(fake: FakeTelegramAPI, database_url: str, db: DbEngine, workdir: Path,
                      *, citizens: int = CITIZENS, kill_at: tuple[float, ...] = (0.35, 0.7),
                      timeout: float = 120) -> Outcome:
    """Run the burst; SIGKILL `kominn run` when the share `kill_at` of all answers has come,
    check the receipts against the database while it is down, start it again."""
    bot = BotProcess(fake, database_url, workdir)
    burst = Burst(fake, citizens)
    figures = Figures()
    expected_answers = citizens * 7
    windows: set[str] = set()
    started = time.monotonic()
    bot.start()
    try:
        burst.start()
        for share in kill_at:
            burst.run_until(lambda share=share: burst.answers >= share * expected_answers,
                            timeout)
            bot.kill()
            figures.faults_injected += 1
            burst.pump()
            # While it is down: what was promised (a receipt) is stored, exactly once.
            figures.lost_while_down += check_receipts_match_ideas(burst, db)
            unrecorded = undelivered_updates(db)
            windows |= unrecorded
            answered = burst.answered(unrecorded)
            figures.sent_unrecorded += len(answered)
            killed_at = time.time()
            figures.lags += [killed_at - when for _, when in answered]
            # People keep tapping and typing while the bot is down.
            down_until = time.monotonic() + DOWN_SECONDS
            burst.run_until(lambda until=down_until: time.monotonic() > until,
                            DOWN_SECONDS + 5)
            bot.start()
        burst.run_until(lambda: burst.finished == citizens, timeout)
        figures.seconds = time.monotonic() - started
        # Late copies (a re-send racing the end) would show up now.
        time.sleep(0.5)
        burst.pump()
        assert bot.stop() in (0, -signal.SIGTERM)
    except BaseException:
        bot.ensure_dead()
        print(bot.logs()[-20000:])
        raise
    figures.updates_sent = burst.updates_sent
    figures.finished = burst.finished
    figures.window = len(windows)
    figures.ideas_lost = check_receipts_match_ideas(burst, db) + \
        citizens - len(receipts_sent(burst))
    figures.duplicates_sent = sum(burst.duplicates().values())
    return Outcome(figures, burst, bot, windows)


def in_window(burst: Burst, windows: set[str], chat: int, prefix: str) -> bool:
    walker = burst.walkers[chat]
    update_id = walker.update_ids.get(prefix)
    return update_id is not None and str(update_id) in windows


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as server:
        yield server


def test_kill_9_during_a_burst_of_100_submissions(fake: FakeTelegramAPI, runtime: Runtime,
                                                  tmp_path: Path,
                                                  record_property: Callable[..., None]) -> None:
    outcome = kill_during_burst(fake, runtime.settings.database_url, runtime.db, tmp_path)
    figures, burst, bot, windows = outcome.figures, outcome.burst, outcome.bot, outcome.windows
    print(f"\nfault suite, kill -9 ({runtime.settings.database_url.split(':')[0]}): "
          f"{figures.line()}")
    record_property("figures", json.dumps(figures.__dict__))

    # Everyone finished with exactly one idea, named in one receipt; no idea without one.
    assert figures.lost_while_down == 0
    assert figures.finished == CITIZENS
    assert figures.ideas_lost == 0
    stored = ideas_by_author(runtime.db)
    assert sorted(stored) == sorted(burst.walkers)
    for user_id, walker in burst.walkers.items():
        assert [title for _, title in stored[user_id]] == [walker.title]
        assert receipts_sent(burst)[user_id] == {stored[user_id][0][0]}
    refs = [ref for ideas in stored.values() for ref, _ in ideas]
    assert len(refs) == len(set(refs)) == CITIZENS
    # Every dialog went on where it was: only the submission's own answers, in order.
    assert burst.unexpected() == []
    # Duplicates only inside the at-least-once window (replies stored undelivered at a kill).
    outside = [key for key in burst.duplicates() if not in_window(burst, windows, *key)]
    assert outside == []
    assert all(n <= figures.faults_injected for n in burst.duplicates().values())
    # Nothing left for Telegram to deliver again, nothing left unsent, no tracebacks.
    assert fake.pending_updates() == []
    assert undelivered_updates(runtime.db) == set()
    assert "Traceback" not in bot.logs()
