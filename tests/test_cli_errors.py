"""What a user sees for a bad flag or an unreachable broker: one line, no traceback."""

import socket
import subprocess
import sys
import time

import pytest

from orders_tui.cli.main import build_parser
from orders_tui.kafka.config import KafkaSettings
from tests.conftest import _free_port_pair


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orders_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_refused_connection_gives_one_line_within_5_seconds():
    address = f"127.0.0.1:{_free_port_pair()}"
    started = time.monotonic()
    result = run_cli("produce", "-b", address)
    assert time.monotonic() - started < 5  # refused: about 2 s
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"orders-tui: cannot reach Kafka at {address}")
    assert "scripts/kafka-local start" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_broker_that_never_answers_gives_one_line_after_about_10_seconds():
    """A listening socket that never says a word: connected, then silence."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody reads or answers
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = run_cli("produce", "-b", address)
        took = time.monotonic() - started
    assert 8 < took < 15, took
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"orders-tui: cannot reach Kafka at {address}")


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["-X", "no.such.property=1"], 'No such configuration property: "no.such.property"'),
        (["-X", "socket.timeout.ms=soon"], "socket.timeout.ms"),
        (["-X", "novalue"], "-X expects key=value, got 'novalue'"),
        (["-F", "/nonexistent/client.props"], "-F /nonexistent/client.props: no such file"),
        (["-n", "lots"], "argument -n/--count: expected a whole number, got 'lots'"),
        (["--rate", "0"], "argument --rate: expected a number above 0"),
        (["--partitions", "0"], "argument --partitions: expected a whole number 1 or more"),
        (["--topic", "same", "--dlq-topic", "same"], "must differ"),
    ],
)
def test_bad_flags_name_the_culprit_in_one_line(args, culprit):
    result = run_cli("produce", "-b", "127.0.0.1:1", *args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert culprit in last
    assert "Traceback" not in result.stderr


def test_bad_properties_file_line_is_named(tmp_path):
    props = tmp_path / "client.properties"
    props.write_text("# comment\nsecurity.protocol=PLAINTEXT\nnot a property\n")
    result = run_cli("produce", "-b", "127.0.0.1:1", "-F", str(props))
    assert result.returncode == 2
    assert f"-F {props}, line 3: expected key=value" in result.stderr


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (bytes(range(256)) * 4, "it holds binary data"),
        ("prénom=x\n".encode("latin-1"), "not UTF-8 text at byte 2"),
        (b"a=b\n" * 300_000, "larger than 1 MiB"),
    ],
    ids=["binary", "latin-1", "huge"],
)
def test_a_file_that_is_not_a_properties_file_is_one_line_naming_it(tmp_path, content, why):
    props = tmp_path / "not.properties"
    props.write_bytes(content)
    result = run_cli("produce", "-b", "127.0.0.1:1", "-F", str(props))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"orders-tui: -F {props}: not a properties file of key=value lines ({why})"
    ]


def test_a_file_that_is_not_a_properties_file_is_never_quoted(tmp_path):
    """-F pointed at the wrong file, such as the system's shadow file: its first line
    (a password hash) was echoed in the error."""
    shadow_like = "sysop:$y$j9T$Fh0bQ8kF1sSalt$HashHashHash:19700:0:99999:7:::\nbin:*:19700::::::\n"
    props = tmp_path / "shadow"
    props.write_text(shadow_like)
    link = tmp_path / "client.properties"
    link.symlink_to(props)
    for path in (props, link):
        result = run_cli("produce", "-b", "127.0.0.1:1", "-F", str(path))
        assert result.returncode == 2
        assert "HashHash" not in result.stderr and "sysop" not in result.stderr
        assert f"-F {path}: not a properties file of key=value lines: line 1" in result.stderr
    # /dev/zero never ends: read up to the limit, then refused.
    result = run_cli("produce", "-b", "127.0.0.1:1", "-F", "/dev/zero")
    assert result.returncode == 2 and "(larger than 1 MiB)" in result.stderr


SECRET = "alice-secret-9f2c"


@pytest.mark.parametrize(
    "line",
    [
        f"sasl.password: {SECRET}",
        f"sasl.oauthbearer.client.secret {SECRET}",
        f"SSL.KEY.PASSWORD:{SECRET}",
        f"sasl.oauthbearer.token {SECRET}",
    ],
)
def test_a_malformed_credential_line_is_named_without_its_value(tmp_path, capsys, line):
    from orders_tui.cli.main import main

    props = tmp_path / "client.properties"
    props.write_text(f"security.protocol=SASL_SSL\n{line}\n")
    assert main(["produce", "-b", "127.0.0.1:1", "-F", str(props)]) == 2
    assert main(["produce", "-b", "127.0.0.1:1", "-X", line]) == 2
    err = capsys.readouterr().err
    assert SECRET not in err
    name = line.split(":")[0].split(" ")[0]
    assert f"line 2: expected key=value, got {name!r} and a value not shown" in err
    assert f"-X expects key=value, got {name!r} and a value not shown" in err


def test_a_credential_is_never_echoed_in_an_error_about_another_property(capsys):
    from orders_tui.cli.main import main

    code = main(
        ["produce", "-b", "127.0.0.1:1", "-X", "security.protocol=SASL_PLAINTEXT",
         "-X", f"sasl.password={SECRET}",
         "-X", f"sasl.mechanism={SECRET}"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "Unsupported SASL mechanism: ***" in err  # the same text, as a secret, is hidden
    assert SECRET not in err


def test_dashboard_refuses_a_bad_property_before_the_screen_opens():
    result = run_cli("-b", "127.0.0.1:1", "-X", "no.such.property=1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'orders-tui: bad librdkafka property: No such configuration property: "no.such.property"'
    ]


def test_headless_report_lines_show_control_characters_instead_of_sending_them(capsys):
    from orders_tui.cli.output import say as _say

    _say("not drained: orders[0] lag 5; held by evil\x1b]0;pwned\x07@host")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert err == "orders-tui: not drained: orders[0] lag 5; held by evil\\x1b]0;pwned\\x07@host\n"


@pytest.mark.parametrize(
    "flags",
    [
        ["--transient-min", "nan"],
        ["--permanent-above", "nan"],
        ["--permanent-above=inf"],
        ["--transient-max=-inf"],
        ["--retry-backoff", "inf"],
        ["--retry-backoff-max", "infinity"],
        ["--idle-exit", "inf"],
        ["--idle-exit", "NaN"],
    ],
)
def test_non_finite_numbers_are_refused_before_anything_runs(flags, capsys):
    from orders_tui.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["consume", "--headless", "-b", "127.0.0.1:1", *flags])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flags[0].split('=')[0]}: expected a finite number" in last


def test_non_finite_rate_is_refused(capsys):
    from orders_tui.cli.main import main

    with pytest.raises(SystemExit):
        main(["produce", "-b", "127.0.0.1:1", "--rate", "inf"])
    assert "argument --rate: expected a finite number, got 'inf'" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["-b", ""], ["-b", " "], ["-X", "bootstrap.servers="]])
def test_an_empty_broker_address_is_refused_saying_so(flags, capsys):
    from orders_tui.cli.main import main

    assert main(["produce", *flags]) == 2
    assert capsys.readouterr().err.startswith(
        "orders-tui: no broker address: -b (or -X bootstrap.servers) is empty"
    )


def test_the_unreachable_address_named_is_the_one_used():
    address = f"127.0.0.1:{_free_port_pair()}"
    result = run_cli("produce", "-b", "127.0.0.1:9", "-X", f"bootstrap.servers={address}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"orders-tui: cannot reach Kafka at {address} (")


def test_schema_registry_credentials_are_never_echoed_and_an_unreachable_one_is_said_at_once():
    """Given as a client property or in the URL, a registry password appears in no error."""
    port = _free_port_pair()  # nothing listens there
    for flags in (
        ["--schema-registry", f"http://127.0.0.1:{port}",
         "-X", "schema.registry.basic.auth.user.info=reader:s3cr3t-pass"],
        ["--schema-registry", f"http://reader:s3cr3t-pass@127.0.0.1:{port}"],
    ):  # fmt: skip
        started = time.monotonic()
        done = run_cli("schema", "check", *flags)
        assert time.monotonic() - started < 5  # said at once, not after the client's retries
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(f"orders-tui: cannot reach the schema registry at "
                                      f"http://127.0.0.1:{port} to check")  # fmt: skip
        assert "s3cr3t" not in done.stderr + done.stdout
    bad = run_cli("schema", "check", "--schema-registry", "ftp://reader:s3cr3t-pass@host")
    assert bad.returncode == 2 and "s3cr3t" not in bad.stderr
    assert "must be an http:// or https:// URL" in bad.stderr
    lone = run_cli("produce", "-X", "schema.registry.basic.auth.user.info=reader:s3cr3t-pass")
    assert lone.returncode == 2 and "s3cr3t" not in lone.stderr
    assert "no registry: add --schema-registry URL" in lone.stderr


def test_an_error_quoting_a_name_shows_its_escapes_never_sends_them():
    """An error line may quote what others chose (a file name, a broker's or a registry's
    message): control characters are written as escapes."""
    result = run_cli("produce", "-b", "127.0.0.1:1", "-F", "/nonexistent/\x1b]0;pwned\x07")
    assert result.returncode == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "-F /nonexistent/\\x1b]0;pwned\\x07: no such file" in result.stderr


def _settings_from(argv: list[str]) -> KafkaSettings:
    args = build_parser().parse_args(argv)
    return KafkaSettings.from_flags(args.bootstrap_servers, args.topic, args.dlq_topic,
                                    args.properties_files, args.properties)  # fmt: skip


def test_connection_flags_work_before_or_after_the_command_and_the_environment_sets_the_default(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert _settings_from(["produce"]).bootstrap_servers == "localhost:9092"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-broker:9092")
    assert _settings_from(["produce"]).bootstrap_servers == "env-broker:9092"
    for argv in (["-b", "flag:1", "--topic", "t", "produce"],
                 ["produce", "-b", "flag:1", "--topic", "t"]):  # fmt: skip
        settings = _settings_from(argv)
        assert (settings.bootstrap_servers, settings.topic) == ("flag:1", "t"), argv
    props = tmp_path / "client.properties"
    props.write_text("# a comment\nclient.id=from-file\nlinger.ms=7\n")
    settings = _settings_from(["-F", str(props), "produce", "-X", "client.id=from-x"])
    config = settings.client_config()
    assert (config["client.id"], config["linger.ms"]) == ("from-x", "7")  # -X after -F


def test_registry_credentials_are_hidden_and_other_registry_properties_shown():
    from orders_tui.kafka.config import RegistrySettings

    registry = RegistrySettings("http://reader:url-pass@registry:8081",
                                {"basic.auth.user.info": "reader:s3cr3t-pass",
                                 "bearer.auth.token": "tok-abcdef",
                                 "ssl.ca.location": "/etc/ca/registry.pem"})  # fmt: skip
    said = registry.redact(
        "at http://reader:url-pass@registry:8081 as reader:s3cr3t-pass (s3cr3t-pass), "
        "token tok-abcdef, trusting /etc/ca/registry.pem"
    )
    assert said == "at http://registry:8081 as *** (***), token ***, trusting /etc/ca/registry.pem"


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (SigCgt in /proc)."""
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_sigterm_while_consume_is_still_connecting_is_a_clean_exit():
    """The handler came after the topics were checked: a SIGTERM while the broker was slow
    to answer killed the process with the default action (rc -15)."""
    import signal

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts, never answers: the topic check waits
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = subprocess.Popen([sys.executable, "-m", "orders_tui", "consume", "--headless",
                                 "-b", address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while not _catches(proc.pid, signal.SIGTERM):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert time.monotonic() - sent < 2 and "Traceback" not in err
