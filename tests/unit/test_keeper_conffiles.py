"""postgresql.conf / pg_hba.conf rendering, and no password in any command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rhizome.keeper.commands import basebackup_argv, initdb_argv, postmaster_argv, rewind_argv
from rhizome.keeper.conffiles import (
    ConfigRequest,
    Upstream,
    configuration_differs,
    quote_value,
    render_configuration,
    slot_name,
    synchronous_standby_names,
    write_configuration,
)
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.tls import PostgresTls
from rhizome.spec import ClusterSpec, parse_spec

SUPERUSER_SECRET = "s3cret-super'pass"
REPLICATION_SECRET = "r3pl:secret\\x"
UPSTREAM = Upstream("pg-1", "10.0.0.1", 5433)


def keeper(tmp_path: Path = Path("/srv")) -> KeeperConfig:
    return KeeperConfig(
        name="pg-2", data_dir=tmp_path / "data", state_dir=tmp_path / "state",
        socket_dir=tmp_path / "state", host="10.0.0.2", port=5432, listen_addresses="10.0.0.2",
        bin_dir=Path("/usr/lib/postgresql/15/bin"), superuser="postgres",
        replication_user="replicator", superuser_password=SUPERUSER_SECRET,
        replication_password=REPLICATION_SECRET,
    )  # fmt: skip


def settings(text: str) -> dict[str, str]:
    """The last value of every parameter in a rendered postgresql.conf."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" = ")
            values[name] = value
    return values


def test_managed_parameters_of_a_standby():
    spec = parse_spec({"pg_parameters": {"work_mem": "64MB", "max_wal_senders": 20}})
    rendered = render_configuration(keeper(), spec, ConfigRequest(upstream=UPSTREAM, standby=True))
    values = settings(rendered.postgresql_conf)
    assert values["port"] == "5432" and values["listen_addresses"] == "'10.0.0.2'"
    assert values["hot_standby"] == "on" and values["wal_log_hints"] == "on"
    assert values["work_mem"] == "'64MB'" and values["max_wal_senders"] == "20"
    assert values["max_replication_slots"] == "10"  # rhizome's default
    assert values["synchronous_standby_names"] == "''"
    assert values["primary_slot_name"] == "'pg_2'"
    assert values["recovery_target_timeline"] == "'latest'"
    conninfo = values["primary_conninfo"]
    assert "host=''10.0.0.1''" in conninfo and "port=''5433''" in conninfo
    assert "passfile=''/srv/state/pgpass''" in conninfo and "application_name=''pg-2''" in conninfo
    assert "password" not in conninfo.replace("passfile", "")
    assert rendered.postgresql_conf.count("max_wal_senders") == 1


def test_a_primary_has_no_upstream_and_lists_its_synchronous_standbys():
    request = ConfigRequest(synchronous_standbys=("pg-1", "pg_3"))
    values = settings(render_configuration(keeper(), ClusterSpec(), request).postgresql_conf)
    assert "primary_conninfo" not in values and "primary_slot_name" not in values
    assert values["synchronous_standby_names"] == """'FIRST 2 ("pg-1", "pg_3")'"""


@pytest.mark.parametrize(
    ("names", "expected"),
    [((), ""), (("a",), 'FIRST 1 ("a")'), (("a-1", "b_2"), 'FIRST 2 ("a-1", "b_2")')],
)
def test_synchronous_standby_names_quote_every_name(names, expected):
    assert synchronous_standby_names(names) == expected


@pytest.mark.parametrize(
    ("value", "rendered"),
    [(True, "on"), (False, "off"), (200, "200"), (0.5, "0.5"), ("it's", "'it''s'"),
     ("a\\b", "'a\\\\b'")],
)  # fmt: skip
def test_values_are_quoted_for_postgresql_conf(value, rendered):
    assert quote_value(value) == rendered


def test_pg_hba_puts_the_keeper_first_then_the_spec_then_replication():
    spec = parse_spec(
        {
            "pg_hba": [
                {"type": "hostssl", "database": "app", "user": "app", "address": "10.0.0.0/8",
                 "method": "scram-sha-256", "options": {"clientcert": "verify-full"}},
                {"type": "local", "database": "all", "user": "all", "method": "peer"},
            ]
        }
    )  # fmt: skip
    hba = render_configuration(keeper(), spec, ConfigRequest()).pg_hba_conf
    lines = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert lines[0] == ["local", "all", "postgres", "scram-sha-256"]
    assert lines[1] == [
        "hostssl",
        "app",
        "app",
        "10.0.0.0/8",
        "scram-sha-256",
        'clientcert="verify-full"',
    ]
    assert lines[2] == ["local", "all", "all", "peer"]
    assert ["host", "replication", "replicator", "all", "scram-sha-256"] in lines[3:]
    assert ["host", "postgres", "postgres", "all", "scram-sha-256"] in lines[3:]


def test_files_are_written_only_when_they_change(tmp_path):
    config = keeper(tmp_path)
    config.data_dir.mkdir()
    rendered = render_configuration(
        config, ClusterSpec(), ConfigRequest(upstream=UPSTREAM, standby=True)
    )
    assert configuration_differs(config.data_dir, rendered, standby=True)
    assert write_configuration(config.data_dir, rendered, standby=True)
    assert (config.data_dir / "standby.signal").exists()
    assert not configuration_differs(config.data_dir, rendered, standby=True)
    assert not write_configuration(config.data_dir, rendered, standby=True)
    assert configuration_differs(config.data_dir, rendered, standby=False)
    assert write_configuration(config.data_dir, rendered, standby=False)
    assert not (config.data_dir / "standby.signal").exists()


def test_slot_names_replace_dashes():
    assert slot_name("pg-2") == "pg_2" and slot_name("pg_2") == "pg_2"


def test_no_password_reaches_a_command_line_or_a_configuration_file(tmp_path):
    config = keeper()
    argvs = [
        initdb_argv(config, tmp_path / "pwfile"),
        basebackup_argv(config, UPSTREAM),
        rewind_argv(config, UPSTREAM),
        postmaster_argv(config, "/usr/bin/setpriv"),
    ]
    rendered = render_configuration(
        config, ClusterSpec(), ConfigRequest(upstream=UPSTREAM, standby=True)
    )
    for text in [
        *(" ".join(argv) for argv in argvs),
        rendered.postgresql_conf,
        rendered.pg_hba_conf,
    ]:
        assert SUPERUSER_SECRET not in text and REPLICATION_SECRET not in text
        assert "password=" not in text
    assert "passfile='/srv/state/pgpass'" in " ".join(basebackup_argv(config, UPSTREAM))
    assert "--data-checksums" in argvs[0]
    assert argvs[3][:2] == ["/usr/bin/setpriv", "--pdeathsig=INT"]
    assert SUPERUSER_SECRET not in repr(config) and REPLICATION_SECRET not in repr(config)


def test_only_the_wal_receiver_carries_the_bare_keeper_name():
    """The master's standby list and synchronous_standby_names match on it."""
    config = keeper()
    rendered = render_configuration(
        config, ClusterSpec(), ConfigRequest(upstream=UPSTREAM, standby=True)
    )
    backup = " ".join(basebackup_argv(config, UPSTREAM))
    rewind = " ".join(rewind_argv(config, UPSTREAM))
    assert f"application_name='{config.name}-basebackup'" in backup
    assert f"application_name='{config.name}-rewind'" in rewind
    assert f"application_name=''{config.name}''" in rendered.postgresql_conf


def test_a_sealed_master_keeps_only_the_keeper_replication_and_superuser_entries():
    spec = parse_spec(
        {
            "pg_hba": [
                {"type": "host", "database": "app", "user": "app", "address": "10.0.0.0/8",
                 "method": "scram-sha-256"},
                {"type": "host", "database": "all", "user": "postgres", "address": "10.0.0.0/8",
                 "method": "scram-sha-256"},
                {"type": "local", "database": "all", "user": "all", "method": "peer"},
            ]
        }
    )  # fmt: skip
    open_hba = render_configuration(keeper(), spec, ConfigRequest()).pg_hba_conf
    sealed = render_configuration(keeper(), spec, ConfigRequest(sealed=True)).pg_hba_conf
    kept = [line.split() for line in sealed.splitlines() if line and not line.startswith("#")]
    assert kept == [
        ["local", "all", "postgres", "scram-sha-256"],
        ["host", "all", "postgres", "10.0.0.0/8", "scram-sha-256"],
        ["host", "replication", "replicator", "all", "scram-sha-256"],
        ["host", "postgres", "postgres", "all", "scram-sha-256"],
    ]
    assert "Sealed for a major-upgrade cutover" in sealed and "app" in open_hba


TLS = PostgresTls(Path("/etc/rhizome/keeper/server.crt"), Path("/etc/rhizome/keeper/server.key"),
                  Path("/etc/rhizome/keeper/ca.crt"))  # fmt: skip


def test_tls_turns_ssl_on_and_verifies_every_peer_connection():
    with_tls = dataclasses.replace(keeper(), tls=TLS)
    rendered = render_configuration(
        with_tls, ClusterSpec(), ConfigRequest(upstream=UPSTREAM, standby=True)
    )
    values = settings(rendered.postgresql_conf)
    assert values["ssl"] == "on" and values["ssl_key_file"] == "'/etc/rhizome/keeper/server.key'"
    assert values["ssl_cert_file"] == "'/etc/rhizome/keeper/server.crt'"
    assert values["ssl_ca_file"] == "'/etc/rhizome/keeper/ca.crt'"
    peer_fields = "sslmode=''verify-full'' sslrootcert=''/etc/rhizome/keeper/ca.crt''"
    assert peer_fields in values["primary_conninfo"]
    peer_lines = [line for line in rendered.pg_hba_conf.splitlines() if "scram" in line]
    assert [line.split()[0] for line in peer_lines] == ["local", "hostssl", "hostssl"]
    for argv in (basebackup_argv(with_tls, UPSTREAM), rewind_argv(with_tls, UPSTREAM)):
        assert "sslmode='verify-full' sslrootcert='/etc/rhizome/keeper/ca.crt'" in " ".join(argv)


def test_without_tls_nothing_of_it_is_written():
    rendered = render_configuration(keeper(), ClusterSpec(), ConfigRequest(upstream=UPSTREAM))
    assert "ssl" not in rendered.postgresql_conf
    assert "hostssl" not in rendered.pg_hba_conf
    assert "host    replication   replicator   all   scram-sha-256" in rendered.pg_hba_conf
    assert "sslmode" not in " ".join(basebackup_argv(keeper(), UPSTREAM))
