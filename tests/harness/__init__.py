"""Test harness: real etcd and PostgreSQL servers on 127.0.0.1, started and stopped by PID."""
