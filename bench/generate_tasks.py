"""Synthetic tasks as JSON Lines, for `taskhub tasks load` (standard library only).

    python bench/generate_tasks.py --count 1000000 [--projects 3,4] [--seed 7] \\
        | taskhub tasks load --user bench

Titles are 3–8 words from a vocabulary of a few hundred plus a number; about a
third of the tasks have a description, priorities are mixed (mostly normal),
about half have a due date, and with --projects about a quarter name one of
those projects. The same seed gives the same lines.
"""

import argparse
import json
import random
import sys
from collections.abc import Iterator, Sequence
from datetime import date, timedelta

_WORDS = """
account action address agenda agreement alert analysis answer api app archive
article asset audit backlog backup badge balance banner batch benchmark bill
board booking branch brief browser budget bug build bundle button cache
calendar call campaign candidate card cart catalog certificate change channel
chart check checklist client cluster code comment commit config contract cookie
copy cost coupon course cron customer dashboard data database deadline deal
debt demo deploy design device diagram dialog digest discount disk dns doc
document domain draft driver email endpoint error estimate event expense export
feature feed feedback field file filter firewall fix flag flow font footer
form forecast framework funnel gateway grant graph guide handbook header
health hire holiday homepage host hotfix icon idea image import incident index
inventory invoice issue job key kickoff label landing laptop layout lead lease
license link list load locale log logo login mail manual map market meeting
memo menu merge metric migration milestone mobile model module monitor mockup
network newsletter note notice offer office onboarding order outage package
page panel partner password patch payment payroll permission phone pipeline
plan plugin policy poll portal post prices printer process product profile
project prompt proposal prototype query queue quote rate readme receipt
record refund release report request research review roadmap role router
rule sale sample schedule schema screen script search secret section server
session setting shipment signup sitemap sketch slide snapshot socket spec
sprint stack standup statement status storage story strategy style summary
supplier support survey switch table tag target task team template tenant
test theme ticket timeline token tool topic training transfer translation
trial tutorial upgrade upload user vendor version video visa vote webinar
webhook website widget wiki window workflow workshop
""".split()  # noqa: SIM905  # a list literal of 300 words reads worse
_VERBS = """
add approve archive ask book build call cancel check clean close collect
configure confirm contact create debug decide define delete deliver deploy
design document draft email estimate evaluate export finalize find fix follow
gather hire implement improve install interview investigate invite measure
merge migrate monitor move negotiate order organize pay plan prepare present
print publish reconcile record refactor remove renew reply report request
research reset resolve restore review rewrite run schedule send ship sign
sketch sort submit summarize test track train translate update upgrade
upload validate verify write
""".split()  # noqa: SIM905  # a list literal of 300 words reads worse
_CONNECTORS = ["for", "with", "about", "before", "after", "from", "and", "the"]
# Connectors make up about a fifth of a title's words after its verb.
_TITLE_WORDS = _WORDS + _CONNECTORS * (len(_WORDS) // len(_CONNECTORS) // 4)
_PRIORITIES = ["low", "normal", "high", "urgent"]
_PRIORITY_WEIGHTS = [15, 55, 22, 8]


def _title(rng: random.Random, number: int) -> str:
    # One `choices` call per list of words: far faster than a `choice` per word.
    verb = rng.choice(_VERBS).capitalize()
    words = rng.choices(_TITLE_WORDS, k=rng.randint(2, 7))
    return f"{verb} {' '.join(words)} #{number}"


def _description(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(1, 3)):
        words = rng.choices(_WORDS, k=rng.randint(5, 14))
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def tasks(
    count: int, projects: Sequence[int] = (), seed: int = 0
) -> Iterator[dict[str, object]]:
    """`count` task bodies for POST /tasks, reproducible from `seed`."""
    rng = random.Random(seed)
    today = date(2026, 11, 22)
    for number in range(1, count + 1):
        task: dict[str, object] = {"title": _title(rng, number)}
        if rng.random() < 0.35:
            task["description"] = _description(rng)
        priority = rng.choices(_PRIORITIES, _PRIORITY_WEIGHTS)[0]
        if priority != "normal" or rng.random() < 0.5:
            task["priority"] = priority
        if rng.random() < 0.5:
            due = today + timedelta(days=rng.randint(-60, 365))
            task["due_date"] = due.isoformat()
        if projects and rng.random() < 0.25:
            task["project_id"] = rng.choice(projects)
        yield task


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True, help="how many tasks")
    parser.add_argument(
        "--projects",
        default="",
        help="comma-separated project ids some tasks belong to (must exist)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    projects = [int(p) for p in args.projects.split(",") if p.strip()]
    out = sys.stdout
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = []
    for task in tasks(args.count, projects, args.seed):
        lines.append(encode(task))
        if len(lines) == 10_000:
            out.write("\n".join(lines) + "\n")
            lines = []
    if lines:
        out.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
