"""rhizome: PostgreSQL high availability through etcd, operated with Ansible."""

__version__ = "0.1.0"
