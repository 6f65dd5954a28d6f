"""The `[api]` section shared by the keeper, the sentinel and the proxy.

::

    [api]
    listen = "127.0.0.1:9643"                  # "off" disables the API
    token_file = "/etc/rhizome/keeper/api.token"  # mode 0600: "Authorization: Bearer <token>"
    cert_file = "/etc/rhizome/keeper/api.pem"  # TLS (with key_file)
    key_file = "/etc/rhizome/keeper/api.key"
    client_ca_file = "/etc/rhizome/api-ca.pem" # TLS clients must present a certificate signed by it
    advertise_url = "https://db1:9643"         # where other agents reach this API (failsafe)
    ca_file = "/etc/rhizome/api-ca.pem"        # verifies the other agents' API certificates

Each agent has its own default address on localhost (keeper 9643, sentinel
9644, proxy 9642). An API bound anywhere else is reachable from other hosts:
it then needs TLS (cert_file and key_file) and authentication (token_file or
client_ca_file), or the agent refuses to start. Failsafe confirmations
(rhizome.failsafe) go to `advertise_url`, by default the scheme and listen
address (a wildcard address needs advertise_url); an agent asking others
presents its token, and its own certificate to peers that require one.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from typing import Any

from rhizome.config import ConfigError, read_secret_file

API_KEYS = {
    "listen", "token_file", "cert_file", "key_file", "client_ca_file", "advertise_url", "ca_file",
}  # fmt: skip
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
DEFAULT_LISTEN = {
    "keeper": "127.0.0.1:9643",
    "sentinel": "127.0.0.1:9644",
    "proxy": "127.0.0.1:9642",
}


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_listen_address(
    value: object, setting: str, source: str, example: str = "127.0.0.1:9643"
) -> ListenAddress:
    """HOST:PORT (IPv6 hosts in brackets); the error names `setting` and the fix."""
    fix = f'write {setting} = "HOST:PORT", e.g. "{example}"'
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {setting} is missing or not a string; {fix}")
    host, separator, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not port_text.isdigit():
        raise ConfigError(f"{source}: {setting} is {value!r}, not HOST:PORT; {fix}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{source}: {setting} has port {port}, outside 1..65535; {fix}")
    return ListenAddress(host, port)


@dataclass(frozen=True)
class ApiConfig:
    """Where an agent's API listens, and how it is protected."""

    listen: ListenAddress | None
    """None: no API."""
    token: str | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    advertise_url: str | None = None
    ca_file: str | None = None

    @property
    def authenticated(self) -> bool:
        """Requests must prove who sends them (a token, or a client certificate)."""
        return self.token is not None or self.client_ca_file is not None

    @property
    def url(self) -> str | None:
        """Where other agents reach this API; None: only from this host, or unknown."""
        if self.advertise_url is not None:
            return self.advertise_url.rstrip("/")
        if self.listen is None or self.listen.loopback or self.listen.host in WILDCARD_HOSTS:
            return None
        scheme = "https" if self.cert_file is not None else "http"
        return f"{scheme}://{self.listen}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context (None: plain HTTP); errors name the file."""
        if self.cert_file is None or self.key_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(self.client_ca_file)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"[api] TLS files cannot be used: {error}") from error
        return context


def api_config(data: dict[str, Any], source: str, agent: str) -> ApiConfig:
    """The `[api]` section of a parsed configuration, for `agent` (keeper, sentinel, proxy)."""
    section = data.get("api", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: api must be a section, [api]")
    unknown = sorted(set(section) - API_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown [api] settings {unknown}; known: {sorted(API_KEYS)}")
    files = {
        name: section.get(name) for name in ("cert_file", "key_file", "client_ca_file", "ca_file")
    }
    for name, value in files.items():
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            raise ConfigError(f"{source}: [api] {name} must be an absolute path")
    if (files["cert_file"] is None) != (files["key_file"] is None):
        raise ConfigError(f"{source}: [api] cert_file and key_file go together; set both or none")
    if files["client_ca_file"] is not None and files["cert_file"] is None:
        raise ConfigError(f"{source}: [api] client_ca_file needs TLS: set cert_file and key_file")
    listen_text = section.get("listen", DEFAULT_LISTEN[agent])
    listen = None
    if listen_text not in ("", "off"):
        listen = parse_listen_address(listen_text, "[api] listen", source)
    token = None
    if section.get("token_file") is not None:
        token = read_secret_file(str(section["token_file"]), "API token")
    config = ApiConfig(listen, token, advertise_url=advertised(section, source), **files)
    check_exposure(config, source)
    return config


def check_exposure(config: ApiConfig, source: str) -> None:
    """An API reachable from other hosts needs TLS and authentication."""
    if config.listen is None or config.listen.loopback:
        return
    authenticated = config.token is not None or config.client_ca_file is not None
    if config.cert_file is None or not authenticated:
        raise ConfigError(
            f"{source}: [api] listen = {str(config.listen)!r} is reachable from other hosts;"
            " set cert_file and key_file (TLS) and token_file or client_ca_file"
            ' (authentication), or listen on localhost, e.g. "127.0.0.1:9643"'
        )


def advertised(section: dict[str, Any], source: str) -> str | None:
    value = section.get("advertise_url")
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(
            f'{source}: [api] advertise_url must be a URL such as "https://db1:9643", not {value!r}'
        )
    return value
