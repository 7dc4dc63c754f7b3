"""The README's flag tables and set-up claims against what the program and the scripts
actually take: a documented flag that `--help` does not list, or a compose file whose
broker is not the version scripts/kafka-local runs, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orders_tui.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _flag_table(heading: str) -> list[str]:
    """The flags (`-n`, `--count`) named in the first column of the table under `heading`."""
    section = README.split(heading, 1)[1]
    table = section.split("| flag | meaning | default |", 1)[1].split("\n\n", 1)[0]
    flags = []
    for row in table.strip().splitlines()[1:]:
        first_column = row.split("|")[1]
        flags += re.findall(r"`(--?[a-zA-Z][\w-]*)", first_column)
    assert flags, heading
    return flags


def _help(capsys, *command: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("heading", "command"),
    [
        ("### `orders-tui produce`", ["produce"]),
        ("### `orders-tui consume --headless`", ["consume"]),
        ("### `orders-tui watch`", ["watch"]),
        ("### `orders-tui dlq replay`", ["dlq", "replay"]),
        ("## Connecting to a cluster", ["produce"]),
        ("## Connecting to a cluster", ["consume"]),
        ("## Connecting to a cluster", ["dlq"]),
        ("## Connecting to a cluster", []),  # the dashboard
    ],
)
def test_every_documented_flag_is_one_the_command_takes(capsys, heading, command):
    shown = _help(capsys, *command)
    missing = [flag for flag in _flag_table(heading) if not re.search(rf"{flag}\b", shown)]
    assert missing == [], f"{' '.join(command) or 'the dashboard'} --help lacks {missing}"


@pytest.mark.parametrize(
    ("command", "flags"),
    [  # flags the README names in its prose rather than in a table
        ([], ["--batch-size", "--rate", "--max-replays", "--seed", "--status-topic",
              "--control-topic", "--group", "--max-retries", "--retry-backoff"]),
        (["serve"], ["--host", "--port", "--allow-actions", "--auth-token", "--public-url",
                     "--group", "--max-retries", "--retry-topic-prefix", "--schema-id",
                     "--status-topic", "--control-topic", "--max-sessions"]),
        (["retries"], ["--group", "--json"]),
        (["consume"], ["--status-topic", "--control-topic"]),
        (["dlq"], ["--limit", "--schema-id", "--where", "--json"]),
        (["dlq", "triage"], ["--where", "--json"]),
        (["dlq", "redrives"], ["--group", "--json"]),
        (["schema", "check"], ["--file", "--json"]),
        (["schema", "register"], ["--file", "--json"]),
    ],
)  # fmt: skip
def test_flags_named_in_the_prose_are_taken(capsys, command, flags):
    shown = _help(capsys, *command)
    assert [flag for flag in flags if not re.search(rf"{flag}\b", shown)] == []


def test_help_lists_every_command(capsys):
    shown = _help(capsys)
    for command in ("produce", "consume", "watch", "serve", "dlq", "schema", "retries"):
        assert re.search(rf"^\s+{command}\s", shown, re.MULTILINE), command


def test_docker_compose_runs_the_versions_the_local_scripts_run():
    compose = (ROOT / "docker-compose.yml").read_text()
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    kafka = re.search(r"<kafka.version>(.+)</kafka.version>", pom).group(1)
    script = (ROOT / "scripts" / "registry-local").read_text()
    registry = re.search(r"^apicurio_version=(.+)$", script, re.MULTILINE).group(1)
    assert f"image: apache/kafka:{kafka}\n" in compose
    assert f"image: apicurio/apicurio-registry-mem:{registry}\n" in compose
    assert '"9092:9092"' in compose and '"8081:8080"' in compose
    assert f"Apache Kafka {kafka}" in README and f"apache/kafka:{kafka}" in README


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (code blocks skipped)."""
    found, in_code = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"^#+\s+(.*)$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            found.add(text.replace(" ", "-"))
    return found


def test_every_link_in_the_readme_and_docs_leads_somewhere():
    """The README is the user's guide and docs/ the rest: a link between them that points
    at a moved section or a missing file fails here."""
    broken = []
    for page in [ROOT / "README.md", ROOT / "tests" / "README.md", *sorted(ROOT.glob("docs/*.md"))]:
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if link.startswith(("http://", "https://")):
                continue
            target, _, anchor = link.partition("#")
            path = (page.parent / target).resolve() if target else page
            if not path.exists() or (anchor and path.suffix == ".md"
                                     and anchor not in _anchors(path)):  # fmt: skip
                broken.append(f"{page.relative_to(ROOT)}: {link}")
    assert broken == []


def test_the_readme_stays_a_users_guide():
    """What users need fits in the README; engineering notes live in docs/."""
    assert len(README.splitlines()) <= 450


def test_the_readme_section_help_points_to_for_the_filter_syntax_holds_it(capsys):
    """`--help` names the README section with the filter syntax by its heading; one that
    moved or was renamed sends the user nowhere (`dlq --help` named 'The DLQ workbench',
    which has no syntax)."""
    pointers = set()
    for command in (["dlq"], ["dlq", "triage"], ["dlq", "replay"]):
        shown = " ".join(_help(capsys, *command).split())
        pointers.update(re.findall(r"README, '([^']+)'", shown))
    assert pointers
    for heading in pointers:
        section = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#)", README, re.M | re.S)
        assert section is not None, heading
        assert "type=permanent price>1200" in section.group(1), heading
