"""The OMERO emulator: an Ice server in a background thread of the process.

:class:`Emulator` serves omero-py's protocol over SSL (logins) and TCP (the
insecure endpoint ``secure=False`` switches to), from a :class:`Catalog`.
The unmodified ``omero.gateway.BlitzGateway`` connects to it as to a real
server::

    with Emulator() as emulator:
        conn = BlitzGateway("root", "omero", host=emulator.host, port=emulator.port)
        conn.connect()

Ice runs its own threads; the emulator's servants answer asynchronously, so
a delayed or stalled reply holds no thread.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any, Literal

import Ice
import omero
import omero.rtypes
from omero import ObjectFactoryRegistrar

from aiomero._logging import get_logger
from aiomero.testing._certs import CertificateFiles, make_certificates
from aiomero.testing._icelog import IceLogger
from aiomero.testing._scheduler import Scheduler
from aiomero.testing.admin import AdminServant, TypesServant
from aiomero.testing.catalog import Catalog, default_catalog
from aiomero.testing.counters import Counters
from aiomero.testing.dispatch import INTERNAL_ADAPTER, Runtime
from aiomero.testing.factory import ServiceFactoryServant
from aiomero.testing.faults import Faults
from aiomero.testing.glacier2 import Glacier2Router
from aiomero.testing.router import (
    ROUTER_IDENTITY,
    RouterServant,
    SessionManagerServant,
    VerifierServant,
)
from aiomero.testing.services import (
    ConfigServant,
    ContainerServant,
    QueryServant,
    SessionServiceServant,
    UpdateServant,
    default_config,
)
from aiomero.testing.sessions import SessionRegistry

__all__ = ["Emulator", "RouterMode"]

logger = get_logger()

RouterMode = Literal["builtin", "glacier2"]

_SERVICES = {
    "omero.api.IAdmin": AdminServant,
    "omero.api.IConfig": ConfigServant,
    "omero.api.IContainer": ContainerServant,
    "omero.api.IQuery": QueryServant,
    "omero.api.ISession": SessionServiceServant,
    "omero.api.ITypes": TypesServant,
    "omero.api.IUpdate": UpdateServant,
}


class Emulator:
    """An emulated OMERO server; a context manager that starts and stops it.

    ``port`` is the SSL port clients log in on and ``insecure_port`` the TCP
    one; 0 picks free ports, which :attr:`port` and :attr:`insecure_port`
    report once started and which restarts keep. ``idle_timeout`` and
    ``time_to_live`` bound sessions in seconds (0 = no limit). ``router``
    chooses who plays the Glacier2 router: the emulator itself
    (``"builtin"``) or Debian's ``glacier2router`` (``"glacier2"``, which
    raises FileNotFoundError at start when it is not installed). ``latency``
    delays every reply from the start, as ``faults.set_latency`` does.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        insecure_port: int = 0,
        idle_timeout: float = 600.0,
        time_to_live: float = 0.0,
        router: RouterMode = "builtin",
        latency: float | tuple[float, float] | None = None,
        threads: int = 4,
    ) -> None:
        if router not in ("builtin", "glacier2"):
            raise ValueError(f"router must be 'builtin' or 'glacier2', not {router!r}")
        self.catalog = catalog if catalog is not None else default_catalog()
        self.host = host
        self.port = port
        self.insecure_port = insecure_port
        self.router = router
        self.sessions = SessionRegistry(idle_timeout, time_to_live)
        self.counters = Counters(lambda: len(self.sessions.sessions()))
        self.faults = Faults(self)
        if latency:
            self.faults.set_latency(latency)
        self._threads = threads
        self._runtime = Runtime(
            catalog=self.catalog,
            sessions=self.sessions,
            faults=self.faults,
            counters=self.counters,
            scheduler=Scheduler(),
        )
        self._communicator: Any = None
        self._certificates: CertificateFiles | None = None
        self._internal_port = 0
        self._router_servant: RouterServant | None = None
        self._manager: SessionManagerServant | None = None
        self._glacier2: Glacier2Router | None = None
        self._refusing = False

    # -- life cycle ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the emulator is serving."""
        return self._communicator is not None

    def start(self) -> Emulator:
        """Start serving; return self. Raises RuntimeError if already running.

        Ports given as 0 are chosen now and kept by later restarts. Raises
        ``Ice.SocketException`` when a port is taken.
        """
        if self.running:
            raise RuntimeError("the emulator is already running")
        self._certificates = make_certificates()
        self._runtime.scheduler = Scheduler()
        self._communicator = Ice.initialize(self._init_data())
        try:
            _register_factories(self._communicator)
            if self.router == "builtin":
                self._start_builtin()
            else:
                self._start_behind_glacier2()
        except BaseException:
            self.stop()
            raise
        self._runtime.config = default_config(
            f"OMERO.Glacier2/router:tcp -p {self.insecure_port} -h @omero.host@",
            self.sessions.idle_timeout,
        )
        self._apply_refusing()
        logger.info(
            "emulator_started",
            host=self.host,
            port=self.port,
            insecure_port=self.insecure_port,
            router=self.router,
        )
        return self

    def stop(self) -> None:
        """Stop serving: close every connection and the listening ports.

        Sessions stay in memory (a :meth:`start` serves them again); their
        clients must join them anew. Stopping a stopped emulator does
        nothing.
        """
        if self._glacier2 is not None:
            self._glacier2.stop()
            self._glacier2 = None
        if self._router_servant is not None:
            self._router_servant.forget_connections()
            self._router_servant = None
        self._manager = None
        communicator, self._communicator = self._communicator, None
        if communicator is not None:
            communicator.destroy()
        self._runtime.scheduler.close()
        self.sessions.forget_handles()
        if self._certificates is not None:
            shutil.rmtree(self._certificates.directory, ignore_errors=True)
            self._certificates = None
        if communicator is not None:
            logger.info("emulator_stopped", port=self.port)

    def restart(self, keep_sessions: bool = True) -> None:
        """Stop and start again on the same ports.

        With ``keep_sessions`` clients can join their sessions again by key,
        as after a real server restart; without, every session is gone.
        """
        self.stop()
        if not keep_sessions:
            self.sessions.clear()
        self.start()

    def reset(self) -> None:
        """Make the emulator as new for the next test, without a restart.

        Removes every fault (answering stalled calls), zeroes the counters,
        ends every session, and starts the emulator if a test stopped it.
        The catalog is left as it is.
        """
        self.faults.reset()
        if self._glacier2 is not None and not self._glacier2.running:
            self._glacier2.start()
        for session in self.sessions.sessions():
            self.sessions.kill(session.uuid)
        self.sessions.clear()
        self.counters.reset()
        if not self.running:
            self.start()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read -------------------------------------------------------------

    def session_keys(self, user: str | None = None) -> list[str]:
        """Keys of the live sessions, of the user named ``user`` if given."""
        user_id = None
        if user is not None:
            found = self.catalog.user_by_name(user)
            if found is None:
                return []
            user_id = found.id
        return [s.uuid for s in self.sessions.sessions(user_id)]

    def gateway(
        self, username: str = "root", password: str = "omero", **options: Any
    ) -> Any:
        """A new, unconnected ``BlitzGateway`` for this emulator.

        ``options`` go to ``BlitzGateway`` (``secure=True``, ``group=...``).
        Call ``connect()`` on it, and ``close()`` when done.
        """
        from omero.gateway import BlitzGateway

        return BlitzGateway(
            username, password, host=self.host, port=self.port, **options
        )

    @property
    def ca_file(self) -> Path | None:
        """The PEM file of the CA that signed the SSL certificate, for clients
        that verify the server (``AsyncGateway(ssl_ca_file=...)``); None while
        stopped. Every start makes a new CA and certificate."""
        certs = self._certificates
        return None if certs is None else certs.ca_file

    @property
    def router_endpoint(self) -> str:
        """The ``Ice.Default.Router`` value for the SSL login endpoint."""
        return f"{ROUTER_IDENTITY}:ssl -p {self.port} -h {self.host}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<Emulator {state} {self.host} ssl={self.port} "
            f"tcp={self.insecure_port} router={self.router}>"
        )

    # -- fault hooks (see Faults) ----------------------------------------------------

    def _set_refusing(self, refusing: bool) -> None:
        self._refusing = refusing
        self._apply_refusing()

    def _apply_refusing(self) -> None:
        if self._router_servant is not None:
            self._router_servant.refusing = self._refusing
        if self._manager is not None:
            self._manager.refusing = self._refusing

    def _drop_connections(self) -> int:
        if self._router_servant is not None:
            return self._router_servant.drop_connections()
        if self._glacier2 is not None:
            # The router holds the client connections: restarting it drops them.
            self._glacier2.stop()
            self.sessions.forget_handles()
            self._glacier2.start()
            return 1
        return 0

    def _expire_session(self, key: str) -> None:
        self.sessions.expire(key)

    # -- setting up Ice ---------------------------------------------------------------

    def _init_data(self) -> Any:
        certs = self._certificates
        assert certs is not None
        properties = Ice.createProperties()
        for key, value in {
            "Ice.ThreadPool.Server.Size": str(self._threads),
            "Ice.ThreadPool.Server.SizeMax": str(self._threads * 4),
            "Ice.ThreadPool.Client.Size": "2",
            "Ice.MessageSizeMax": "65536",
            # Clients heartbeat; an idle client must not lose its session.
            "Ice.ACM.Server.Close": "0",
            "Ice.Warn.Connections": "0",
            "Ice.Warn.Dispatch": "0",
            "Ice.Plugin.IceSSL": "IceSSL:createIceSSL",
            "IceSSL.DefaultDir": str(certs.directory),
            "IceSSL.CertFile": certs.bundle_file.name,
            "IceSSL.VerifyPeer": "0",
        }.items():
            properties.setProperty(key, value)
        data = Ice.InitializationData()
        data.properties = properties
        data.logger = IceLogger()
        return data

    def _add_servants(self, adapter: Any) -> None:
        runtime = self._runtime
        adapter.addDefaultServant(ServiceFactoryServant(runtime), "")
        for category, servant_class in _SERVICES.items():
            adapter.addDefaultServant(servant_class(runtime), category)

    def _start_builtin(self) -> None:
        router = RouterServant(self._runtime)
        self._router_servant = router
        ssl = self._communicator.createObjectAdapterWithEndpoints(
            "ssl", f"ssl -h {self.host} -p {self.port}"
        )
        tcp = self._communicator.createObjectAdapterWithEndpoints(
            "tcp", f"tcp -h {self.host} -p {self.insecure_port}"
        )
        for adapter in (ssl, tcp):
            adapter.add(router, Ice.stringToIdentity(ROUTER_IDENTITY))
            self._add_servants(adapter)
            adapter.activate()
        self.port = _port_of(ssl)
        self.insecure_port = _port_of(tcp)

    def _start_behind_glacier2(self) -> None:
        assert self._certificates is not None
        self._manager = SessionManagerServant(self._runtime)
        internal = self._communicator.createObjectAdapterWithEndpoints(
            INTERNAL_ADAPTER, f"tcp -h 127.0.0.1 -p {self._internal_port}"
        )
        internal.add(
            VerifierServant(self._runtime), Ice.stringToIdentity("aiomero/verifier")
        )
        internal.add(self._manager, Ice.stringToIdentity("aiomero/session-manager"))
        self._add_servants(internal)
        internal.activate()
        self._internal_port = _port_of(internal)

        self.port = self.port or _free_port(self.host)
        self.insecure_port = self.insecure_port or _free_port(self.host)
        self._glacier2 = Glacier2Router(
            self.host,
            self.port,
            self.insecure_port,
            f"tcp -h 127.0.0.1 -p {self._internal_port}",
            self._certificates,
        )
        self._glacier2.start()


def _register_factories(communicator: Any) -> None:
    # Without omero-py's factories even query parameters fail to unmarshal.
    ObjectFactoryRegistrar.registerObjectFactory(communicator, None)
    for factory in omero.rtypes.ObjectFactories.values():
        factory.register(communicator)


def _port_of(adapter: Any) -> int:
    return int(adapter.getEndpoints()[0].getInfo().port)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
