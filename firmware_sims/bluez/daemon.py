"""A simulated BlueZ: owns ``org.bluez`` on a private bus and exposes the device models.

Unmodified bleak (3.x) drives it exactly as it drives bluetoothd (DESIGN §8): ``Adapter1``
(``Roles`` with "central", ``Powered``, ``SetDiscoveryFilter``/``StartDiscovery``/
``StopDiscovery``), ``Device1`` announced through ``InterfacesAdded``/``PropertiesChanged``
(``ManufacturerData`` as ``a{qv}``, ``ServiceData`` as ``a{sv}``), ``Connect`` → GATT objects
exported at ``.../serviceHHHH/charHHHH/descHHHH`` → ``ServicesResolved=True`` → the reply,
``ReadValue``/``WriteValue``/``StartNotify``/``StopNotify``/``AcquireNotify`` (a SOCK_SEQPACKET
socketpair), ``Disconnect``, and on a link drop ``ServicesResolved=False``, the GATT objects
removed and ``Connected=False``. Errors carry BlueZ's names and texts
(``org.bluez.Error.Failed``, ``NotPermitted``, ``InProgress``, ``NotConnected``, ``NotReady``...;
ATT errors from a device become ``org.bluez.Error.Failed: Operation failed with ATT error: 0xNN``
as in gatt-client.c).

Simulated time runs ``time_scale`` times faster than the wall clock; the models are stepped
every few milliseconds and their notifications are sent to whoever subscribed. Faults are
injected through ``org.fittrack.SimControl1`` at ``/org/fittrack/sim`` on the same bus
(see :mod:`firmware_sims.bluez.control`). Fault durations are in simulated seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.constants import NameFlag, RequestNameReply

from ..models import DeviceModel
from ..models.base import INDICATE, NOTIFY, READ, WRITE, WRITE_NR, AttError, ATT_CCCD_IMPROPERLY_CONFIGURED, uuid128
from .flow import install_eagain_workaround

log = logging.getLogger("firmware_sims.bluez")

BLUEZ = "org.bluez"
ADAPTER_IFACE = "org.bluez.Adapter1"
DEVICE_IFACE = "org.bluez.Device1"
SERVICE_IFACE = "org.bluez.GattService1"
CHAR_IFACE = "org.bluez.GattCharacteristic1"
DESC_IFACE = "org.bluez.GattDescriptor1"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
OM_IFACE = "org.freedesktop.DBus.ObjectManager"
INTROSPECT_IFACE = "org.freedesktop.DBus.Introspectable"
CONTROL_IFACE = "org.fittrack.SimControl1"
CONTROL_PATH = "/org/fittrack/sim"
CCCD = uuid128(0x2902)
ATT_MTU = 247
TICK_S = 0.004
CONNECT_TIMEOUT_WALL_S = 2.0

E_FAILED = "org.bluez.Error.Failed"
E_NOT_PERMITTED = "org.bluez.Error.NotPermitted"
E_NOT_AUTHORIZED = "org.bluez.Error.NotAuthorized"
E_IN_PROGRESS = "org.bluez.Error.InProgress"
E_NOT_CONNECTED = "org.bluez.Error.NotConnected"
E_ALREADY_CONNECTED = "org.bluez.Error.AlreadyConnected"
E_NOT_READY = "org.bluez.Error.NotReady"
E_NOT_SUPPORTED = "org.bluez.Error.NotSupported"
E_INVALID_ARGS = "org.bluez.Error.InvalidArguments"
E_IMPROPERLY_CONFIGURED = "org.bluez.Error.ImproperlyConfigured"
E_DOES_NOT_EXIST = "org.bluez.Error.DoesNotExist"


class BluezError(Exception):
    """A D-Bus error reply with a BlueZ error name."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text
        super().__init__(f"{name}: {text}")


def att_to_bluez(e: AttError) -> BluezError:
    """Map an ATT error as BlueZ's gatt-client.c create_gatt_dbus_error() does."""
    c = e.code
    if c == 0x02:
        return BluezError(E_NOT_PERMITTED, "Read not permitted")
    if c == 0x03:
        return BluezError(E_NOT_PERMITTED, "Write not permitted")
    if c in (0x05, 0x0C, 0x0F):  # insufficient authentication / key size / encryption
        return BluezError(E_NOT_PERMITTED, "Not paired")
    if c == 0x08:
        return BluezError(E_NOT_AUTHORIZED, "Not authorized")
    if c == 0x07:
        return BluezError(E_INVALID_ARGS, "Invalid offset")
    if c == 0x0D:
        return BluezError(E_INVALID_ARGS, "Invalid Length")
    if c == 0x06:
        return BluezError(E_NOT_SUPPORTED, "Request not supported")
    if c == 0xFD:
        return BluezError(E_IMPROPERLY_CONFIGURED, "Improperly configured")
    return BluezError(E_FAILED, f"Operation failed with ATT error: 0x{c:02x}")


def _hexpath(addr: str) -> str:
    return "dev_" + addr.replace(":", "_")


@dataclass
class CharObj:
    path: str
    uuid: str
    flags: tuple[str, ...]
    service_path: str
    handle: int
    desc_paths: list[str] = field(default_factory=list)
    value: bytes = b""
    notify_clients: set[str] = field(default_factory=set)
    acquired: socket.socket | None = None
    acquired_queue: list[bytes] = field(default_factory=list)

    @property
    def can_notify(self) -> bool:
        return NOTIFY in self.flags or INDICATE in self.flags

    @property
    def notifying(self) -> bool:
        return bool(self.notify_clients) or self.acquired is not None


@dataclass
class SimDevice:
    model: DeviceModel
    path: str
    exported: bool = False
    connected: bool = False
    connecting: bool = False
    cancel_connect: bool = False
    services_resolved: bool = False
    out_of_range_until: float = -1.0  # simulated s
    refuse_connects: int = 0
    refuse_error: str = "le-connection-abort-by-remote"
    slow_discovery_s: float = 0.0
    att_errors: dict[str, list[int]] = field(default_factory=dict)  # char uuid -> [code, remaining]
    burst_until: float = -1.0
    burst_queue: list[Any] = field(default_factory=list)
    gatt: list[tuple[str, dict[str, dict[str, Variant]]]] = field(default_factory=list)
    chars: dict[str, CharObj] = field(default_factory=dict)  # path -> char
    chars_by_uuid: dict[str, CharObj] = field(default_factory=dict)
    rssi: int = -60
    sent: dict[str, int] = field(default_factory=dict)  # char uuid -> notifications delivered to the bus
    dropped: int = 0
    disconnects: int = 0
    last_seen_wall: float = 0.0  # monotonic s: last advert seen / link up


class SimBluez:
    """The daemon. ``await SimBluez(...).run()`` serves until :meth:`stop`."""

    def __init__(self, bus_address: str, models: list[DeviceModel], time_scale: float = 1.0,
                 adapter: str = "hci0", adapter_address: str = "00:1A:7D:DA:71:13",
                 temporary_timeout_s: float = 30.0) -> None:
        self.bus_address = bus_address
        #: BlueZ's TemporaryTimeout (main.conf): an unpaired device not seen or connected for this
        #: long (wall seconds) is removed (InterfacesRemoved); connecting by its old path then fails
        self.temporary_timeout_s = temporary_timeout_s
        self.time_scale = float(time_scale)
        self.adapter_path = f"/org/bluez/{adapter}"
        self.adapter_address = adapter_address
        self.devices: dict[str, SimDevice] = {}
        self.by_path: dict[str, SimDevice] = {}
        for m in models:
            d = SimDevice(m, f"{self.adapter_path}/{_hexpath(m.address)}", rssi=m.advertisement().rssi_dbm)
            self.devices[m.address.upper()] = d
            self.by_path[d.path] = d
        self.powered = True
        self.power_on_at = -1.0
        self.discovery_clients: dict[str, dict[str, Any]] = {}
        self._filters: dict[str, dict[str, Any]] = {}
        self.bus: MessageBus | None = None
        self._t0 = time.monotonic()
        self._stop = asyncio.Event()
        self._rng = random.Random(0)
        self._next_adv = 0.0
        self.stats: dict[str, int] = {"signals": 0, "fd_writes": 0, "eagain": 0}
        self._batch: list[Message] | None = None

    # -- time ---------------------------------------------------------------------------------
    def now_s(self) -> float:
        """Simulated seconds since start."""
        return (time.monotonic() - self._t0) * self.time_scale

    def wall(self, sim_s: float) -> float:
        return sim_s / self.time_scale

    # -- bus plumbing ---------------------------------------------------------------------------
    async def start(self) -> None:
        install_eagain_workaround(self.stats)
        self.bus = MessageBus(bus_address=self.bus_address, negotiate_unix_fd=True, bus_type=BusType.SYSTEM)
        await self.bus.connect()
        self.bus.add_message_handler(self._on_message)
        await self.bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                    interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                                    body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"]))
        r = await self.bus.request_name(BLUEZ, NameFlag.DO_NOT_QUEUE)
        if r != RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"could not own {BLUEZ} on {self.bus_address}: {r}")
        self._t0 = time.monotonic()

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        await self.start()
        if ready:
            ready()
        tick = asyncio.create_task(self._tick_loop())
        try:
            await self._stop.wait()
        finally:
            tick.cancel()
            for d in self.devices.values():
                for c in d.chars.values():
                    self._release_acquired(d, c, emit=False)
            assert self.bus is not None
            self.bus.disconnect()

    def stop(self) -> None:
        self._stop.set()

    def _send(self, msg: Message) -> None:
        if self._batch is not None:  # inside a tick: keep the order with the batched signals
            self._batch.append(msg)
            return
        assert self.bus is not None
        self.bus.send(msg)

    def _signal(self, path: str, iface: str, member: str, sig: str, body: list[Any]) -> None:
        self.stats["signals"] += 1
        msg = Message.new_signal(path, iface, member, sig, body)
        if self._batch is not None:
            self._batch.append(msg)
        else:
            self._send(msg)

    def _flush_batch(self) -> None:
        """Write the signals of one tick as one buffer: one write() instead of one per signal.

        Order is kept: everything goes through dbus-fast's single writer queue.
        """
        batch, self._batch = self._batch, None
        if not batch:
            return
        assert self.bus is not None
        buf = bytearray()
        for m in batch:
            m.serial = self.bus.next_serial()
            buf += m._marshall(False)
        w = self.bus._writer
        w.messages.append((buf, None, None))
        w.schedule_write()

    def _props_changed(self, path: str, iface: str, changed: dict[str, Variant], invalidated: list[str] | None = None) -> None:
        self._signal(path, PROPS_IFACE, "PropertiesChanged", "sa{sv}as", [iface, changed, invalidated or []])

    # -- object tree ----------------------------------------------------------------------------
    def _adapter_props(self) -> dict[str, Variant]:
        return {
            "Address": Variant("s", self.adapter_address), "AddressType": Variant("s", "public"),
            "Name": Variant("s", "fittrack-sim"), "Alias": Variant("s", "fittrack-sim"), "Class": Variant("u", 0),
            "Connectable": Variant("b", True), "Powered": Variant("b", self.powered),
            "PowerState": Variant("s", "on" if self.powered else "off"), "Discoverable": Variant("b", False),
            "DiscoverableTimeout": Variant("u", 180), "Pairable": Variant("b", True), "PairableTimeout": Variant("u", 0),
            "Discovering": Variant("b", bool(self.discovery_clients)), "UUIDs": Variant("as", []),
            "Modalias": Variant("s", "usb:v1D6Bp0246d0548"), "Roles": Variant("as", ["central", "peripheral"]),
            "Manufacturer": Variant("q", 0xFFFF), "Version": Variant("y", 12),
        }

    def _device_props(self, d: SimDevice) -> dict[str, Variant]:
        a = d.model.advertisement()
        p = {
            "Address": Variant("s", d.model.address), "AddressType": Variant("s", "random"),
            "Name": Variant("s", a.local_name), "Alias": Variant("s", a.local_name),
            "Paired": Variant("b", False), "Bonded": Variant("b", False), "Trusted": Variant("b", False),
            "Blocked": Variant("b", False), "LegacyPairing": Variant("b", False), "Connected": Variant("b", d.connected),
            "UUIDs": Variant("as", list(a.service_uuids)), "Adapter": Variant("o", self.adapter_path),
            "ServicesResolved": Variant("b", d.services_resolved), "RSSI": Variant("n", d.rssi),
            "TxPower": Variant("n", a.tx_power_dbm),
            "ManufacturerData": Variant("a{qv}", {k: Variant("ay", v) for k, v in a.manufacturer_data.items()}),
            "AdvertisingFlags": Variant("ay", b"\x06"),
        }
        if a.service_data:
            p["ServiceData"] = Variant("a{sv}", {k: Variant("ay", v) for k, v in a.service_data.items()})
        if a.appearance:
            p["Appearance"] = Variant("q", a.appearance)
        return p

    def _managed_objects(self) -> dict[str, dict[str, dict[str, Variant]]]:
        objs: dict[str, dict[str, dict[str, Variant]]] = {
            "/org/bluez": {"org.bluez.AgentManager1": {}, "org.bluez.ProfileManager1": {}},
            self.adapter_path: {ADAPTER_IFACE: self._adapter_props(), "org.bluez.GattManager1": {},
                                "org.bluez.LEAdvertisingManager1": {
                                    "ActiveInstances": Variant("y", 0), "SupportedInstances": Variant("y", 5),
                                    "SupportedIncludes": Variant("as", ["tx-power", "appearance", "local-name"])}},
        }
        for d in self.devices.values():
            if d.exported:
                objs[d.path] = {DEVICE_IFACE: self._device_props(d), PROPS_IFACE: {}}
                for path, ifaces in d.gatt:
                    objs[path] = {k: self._live_props(d, path, k, v) for k, v in ifaces.items()}
        return objs

    def _live_props(self, d: SimDevice, path: str, iface: str, props: dict[str, Variant]) -> dict[str, Variant]:
        if iface != CHAR_IFACE:
            return props
        c = d.chars[path]
        p = dict(props)
        p["Value"] = Variant("ay", c.value)
        if "Notifying" in p:
            p["Notifying"] = Variant("b", bool(c.notify_clients))
        if "NotifyAcquired" in p:
            p["NotifyAcquired"] = Variant("b", c.acquired is not None)
        return p

    def _build_gatt(self, d: SimDevice) -> None:
        d.gatt.clear()
        d.chars.clear()
        d.chars_by_uuid.clear()
        h = 1
        for s in d.model.services():
            spath = f"{d.path}/service{h:04x}"
            d.gatt.append((spath, {SERVICE_IFACE: {
                "UUID": Variant("s", s.uuid), "Device": Variant("o", d.path), "Primary": Variant("b", True),
                "Includes": Variant("ao", []), "Handle": Variant("q", h)}}))
            h += 1
            for c in s.chars:
                cpath = f"{spath}/char{h:04x}"
                props = {"UUID": Variant("s", c.uuid), "Service": Variant("o", spath), "Value": Variant("ay", b""),
                         "Flags": Variant("as", list(c.flags)), "MTU": Variant("q", ATT_MTU), "Handle": Variant("q", h + 1)}
                if NOTIFY in c.flags or INDICATE in c.flags:
                    props["Notifying"] = Variant("b", False)
                if NOTIFY in c.flags:
                    props["NotifyAcquired"] = Variant("b", False)
                if WRITE_NR in c.flags:
                    props["WriteAcquired"] = Variant("b", False)
                obj = CharObj(cpath, c.uuid, c.flags, spath, h)
                d.gatt.append((cpath, {CHAR_IFACE: props}))
                h += 2
                descs = list(c.descriptors)
                if NOTIFY in c.flags or INDICATE in c.flags:
                    descs.insert(0, CCCD)
                for du in descs:
                    dpath = f"{cpath}/desc{h:04x}"
                    d.gatt.append((dpath, {DESC_IFACE: {"UUID": Variant("s", du), "Characteristic": Variant("o", cpath),
                                                        "Value": Variant("ay", b""), "Handle": Variant("q", h)}}))
                    obj.desc_paths.append(dpath)
                    h += 1
                d.chars[cpath] = obj
                d.chars_by_uuid[c.uuid] = obj

    # -- discovery and advertising -------------------------------------------------------------
    def _in_range(self, d: SimDevice) -> bool:
        return self.now_s() >= d.out_of_range_until

    def _matches_filter(self, d: SimDevice) -> bool:
        uuids: set[str] = set()
        for f in self.discovery_clients.values():
            if not f.get("UUIDs"):
                return True
            uuids.update(u.lower() for u in f["UUIDs"])
        return bool(uuids & set(d.model.advertisement().service_uuids))

    def _advertise(self) -> None:
        """One advertising round: new devices appear, known ones update RSSI/data."""
        for d in self.devices.values():
            if d.connected or not self._in_range(d) or not self._matches_filter(d):
                continue
            d.rssi = d.model.advertisement().rssi_dbm + self._rng.randint(-4, 4)
            d.last_seen_wall = time.monotonic()
            if not d.exported:
                d.exported = True
                self._signal("/", OM_IFACE, "InterfacesAdded", "oa{sa{sv}}",
                             [d.path, {DEVICE_IFACE: self._device_props(d), PROPS_IFACE: {}}])
            else:
                a = d.model.advertisement()
                self._props_changed(d.path, DEVICE_IFACE, {
                    "RSSI": Variant("n", d.rssi), "TxPower": Variant("n", a.tx_power_dbm),
                    "ManufacturerData": Variant("a{qv}", {k: Variant("ay", v) for k, v in a.manufacturer_data.items()})})

    # -- the clock ------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            self._batch = []
            try:
                self._tick()
            except Exception:  # pragma: no cover - a bug here must not kill the daemon silently
                log.exception("tick failed")
            finally:
                self._flush_batch()
            await asyncio.sleep(TICK_S)

    def _tick(self) -> None:
        now = self.now_s()
        wall = time.monotonic()
        if not self.powered and 0 <= self.power_on_at <= now:
            self._set_powered(True)
        if self.discovery_clients and self.powered and wall >= self._next_adv:
            self._next_adv = wall + 0.25
            self._advertise()
        if self.temporary_timeout_s > 0:
            for d in self.devices.values():
                if d.exported and not d.connected and not d.connecting and \
                        wall - d.last_seen_wall > self.temporary_timeout_s:
                    d.exported = False
                    self._signal("/", OM_IFACE, "InterfacesRemoved", "oas", [d.path, [DEVICE_IFACE, PROPS_IFACE]])
        for d in self.devices.values():
            notes = d.model.advance(now)
            if d.burst_until >= 0:
                d.burst_queue.extend(notes)
                if now >= d.burst_until:
                    notes, d.burst_queue, d.burst_until = d.burst_queue, [], -1.0
                else:
                    continue
            if not d.connected or not d.services_resolved:
                d.dropped += len(notes)
                continue
            for n in notes:
                self._deliver(d, n.char_uuid, n.payload)

    def _deliver(self, d: SimDevice, char_uuid: str, payload: bytes) -> None:
        c = d.chars_by_uuid.get(char_uuid)
        if c is None:
            return
        c.value = payload
        if c.acquired is not None:
            self._fd_write(d, c, payload)
            d.sent[char_uuid] = d.sent.get(char_uuid, 0) + 1
        elif c.notify_clients:
            self._props_changed(c.path, CHAR_IFACE, {"Value": Variant("ay", payload)})
            d.sent[char_uuid] = d.sent.get(char_uuid, 0) + 1
        else:
            d.dropped += 1

    def _fd_write(self, d: SimDevice, c: CharObj, payload: bytes) -> None:
        sock = c.acquired
        assert sock is not None
        if c.acquired_queue:
            c.acquired_queue.append(payload)
            return
        try:
            sock.send(payload)
            self.stats["fd_writes"] += 1
        except BlockingIOError:
            self.stats["eagain"] += 1
            c.acquired_queue.append(payload)
            asyncio.get_running_loop().add_writer(sock.fileno(), self._fd_flush, d, c)
        except OSError:
            self._release_acquired(d, c)

    def _fd_flush(self, d: SimDevice, c: CharObj) -> None:
        sock = c.acquired
        if sock is None:
            return
        try:
            while c.acquired_queue:
                sock.send(c.acquired_queue[0])
                self.stats["fd_writes"] += 1
                c.acquired_queue.pop(0)
        except BlockingIOError:
            return
        except OSError:
            self._release_acquired(d, c)
            return
        asyncio.get_running_loop().remove_writer(sock.fileno())

    # -- connection state machine ---------------------------------------------------------------
    async def _connect(self, d: SimDevice) -> None:
        if not self.powered:
            raise BluezError(E_NOT_READY, "Resource Not Ready")
        if d.connected:
            raise BluezError(E_ALREADY_CONNECTED, "Already Connected")
        if d.connecting:
            raise BluezError(E_IN_PROGRESS, "In Progress")
        d.connecting = True
        d.cancel_connect = False
        try:
            await asyncio.sleep(0.02)
            if d.cancel_connect:  # Disconnect() while connecting cancels the attempt
                raise BluezError(E_FAILED, "le-connection-abort-by-local")
            if d.refuse_connects > 0:
                d.refuse_connects -= 1
                raise BluezError(E_FAILED, d.refuse_error)
            # BlueZ keeps trying while the device is silent and gives up with ERR_LE_CONN_TIMEOUT.
            # (Not "le-connection-abort-by-local": bleak answers that one by waiting for a
            # Connected True->False pair, which BlueZ only sends when the link had come up.)
            deadline = time.monotonic() + CONNECT_TIMEOUT_WALL_S
            while not self._in_range(d):
                if time.monotonic() >= deadline:
                    raise BluezError(E_FAILED, "le-connection-timeout")
                if d.cancel_connect:
                    raise BluezError(E_FAILED, "le-connection-abort-by-local")
                await asyncio.sleep(0.02)
            if not self.powered:
                raise BluezError(E_NOT_READY, "Resource Not Ready")
            d.connected = True
            d.last_seen_wall = time.monotonic()
            self._props_changed(d.path, DEVICE_IFACE, {"Connected": Variant("b", True)})
            if d.slow_discovery_s > 0:
                await asyncio.sleep(self.wall(d.slow_discovery_s))
                d.slow_discovery_s = 0.0
            else:
                await asyncio.sleep(0.01)
            if not d.connected:  # dropped during discovery
                raise BluezError(E_FAILED, "le-connection-abort-by-remote")
            self._build_gatt(d)
            for path, ifaces in d.gatt:
                self._signal("/", OM_IFACE, "InterfacesAdded", "oa{sa{sv}}", [path, ifaces])
            d.services_resolved = True
            self._props_changed(d.path, DEVICE_IFACE, {"ServicesResolved": Variant("b", True)})
        finally:
            d.connecting = False

    def _disconnect(self, d: SimDevice, replies: list[Message] | None = None) -> None:
        """Link gone (local Disconnect, link drop, out of range or adapter off).

        Order as BlueZ's device_remove_connection(): ServicesResolved=False, (GATT objects of an
        unbonded device removed), replies to pending Disconnect() calls, then Connected=False.
        """
        if not d.connected:
            for r in replies or []:
                self._send(r)
            return
        d.disconnects += 1
        for c in d.chars.values():
            self._release_acquired(d, c, emit=False)
            c.notify_clients.clear()
        if d.services_resolved:
            d.services_resolved = False
            self._props_changed(d.path, DEVICE_IFACE, {"ServicesResolved": Variant("b", False)})
        for path, ifaces in reversed(d.gatt):
            self._signal("/", OM_IFACE, "InterfacesRemoved", "oas", [path, list(ifaces)])
        d.gatt.clear()
        d.chars.clear()
        d.chars_by_uuid.clear()
        d.connected = False
        d.last_seen_wall = time.monotonic()
        for r in replies or []:
            self._send(r)
        self._props_changed(d.path, DEVICE_IFACE, {"Connected": Variant("b", False)})

    def _release_acquired(self, d: SimDevice, c: CharObj, emit: bool = True) -> None:
        if c.acquired is None:
            return
        sock, c.acquired = c.acquired, None
        c.acquired_queue.clear()
        loop = asyncio.get_event_loop()
        try:
            loop.remove_reader(sock.fileno())
            loop.remove_writer(sock.fileno())
        except (ValueError, RuntimeError):
            pass
        sock.close()
        if emit and d.connected:
            self._props_changed(c.path, CHAR_IFACE, {"NotifyAcquired": Variant("b", False)})

    def _set_powered(self, on: bool) -> None:
        if on == self.powered:
            return
        if not on:
            for d in self.devices.values():
                self._disconnect(d)
            if self.discovery_clients:
                self.discovery_clients.clear()
                self._props_changed(self.adapter_path, ADAPTER_IFACE, {"Discovering": Variant("b", False)})
        self.powered = on
        self.power_on_at = -1.0
        self._props_changed(self.adapter_path, ADAPTER_IFACE, {
            "Powered": Variant("b", on), "PowerState": Variant("s", "on" if on else "off")})

    # -- method dispatch ------------------------------------------------------------------------
    def _on_message(self, msg: Message) -> Message | bool | None:
        if msg.message_type == MessageType.SIGNAL:
            if msg.member == "NameOwnerChanged" and msg.body and msg.body[2] == "":
                self._client_gone(msg.body[0])
            return None
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        try:
            result = self._dispatch(msg)
        except BluezError as e:
            return Message.new_error(msg, e.name, e.text)
        except AttError as e:
            be = att_to_bluez(e)
            return Message.new_error(msg, be.name, be.text)
        except Exception as e:  # a simulator bug: say so instead of dbus-fast's generic InternalError
            log.exception("handler failed")
            return Message.new_error(msg, E_FAILED, f"simulator bug: {e!r}")
        if asyncio.iscoroutine(result):
            asyncio.ensure_future(self._reply_later(msg, result))
            return True
        return result

    async def _reply_later(self, msg: Message, coro: Any) -> None:
        try:
            reply = await coro
        except BluezError as e:
            reply = Message.new_error(msg, e.name, e.text)
        except AttError as e:
            be = att_to_bluez(e)
            reply = Message.new_error(msg, be.name, be.text)
        except Exception as e:  # pragma: no cover
            log.exception("handler failed")
            reply = Message.new_error(msg, E_FAILED, f"simulator bug: {e!r}")
        if reply is not None:
            self._send(reply)

    def _dispatch(self, msg: Message) -> Any:
        path, iface, member = msg.path, msg.interface, msg.member
        if iface == INTROSPECT_IFACE:
            return Message.new_method_return(msg, "s", [self._introspect(path)])
        if iface == OM_IFACE and member == "GetManagedObjects" and path == "/":
            return Message.new_method_return(msg, "a{oa{sa{sv}}}", [self._managed_objects()])
        if path == CONTROL_PATH and iface == CONTROL_IFACE:
            from .control import handle_control

            return handle_control(self, msg)
        if iface == PROPS_IFACE:
            return self._properties(msg)
        if path == self.adapter_path and iface == ADAPTER_IFACE:
            return self._adapter_method(msg)
        d = self.by_path.get(path or "")
        if d is not None and iface == DEVICE_IFACE and d.exported:
            return self._device_method(msg, d)
        if iface == CHAR_IFACE and path:
            dev = self.by_path.get(path.split("/service")[0])
            if dev is not None and path in dev.chars:
                return self._char_method(msg, dev, dev.chars[path])
        if iface == DESC_IFACE and path:
            dev = self.by_path.get(path.split("/service")[0])
            if dev is not None and any(path == p for p, _ in dev.gatt):
                return self._desc_method(msg, dev, path)
        known = path in ("/", "/org", "/org/bluez", self.adapter_path, CONTROL_PATH) or (
            d is not None and d.exported) or any(path == p for dd in self.devices.values() for p, _ in dd.gatt)
        if not known:
            return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", f"Method \"{member}\" with signature \"{msg.signature}\" on interface \"{iface}\" doesn't exist")
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod",
                                 f"Method \"{member}\" with signature \"{msg.signature}\" on interface \"{iface}\" doesn't exist")

    def _introspect(self, path: str | None) -> str:
        children: set[str] = set()
        prefix = (path or "/").rstrip("/") + "/"
        for p in [self.adapter_path, CONTROL_PATH, *(d.path for d in self.devices.values() if d.exported),
                  *(p for d in self.devices.values() for p, _ in d.gatt)]:
            if p.startswith(prefix):
                children.add(p[len(prefix):].split("/")[0])
        nodes = "".join(f'<node name="{c}"/>' for c in sorted(children))
        return ('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN" '
                f'"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd"><node>{nodes}</node>')

    def _props_of(self, path: str) -> dict[str, dict[str, Variant]]:
        if path == self.adapter_path:
            return {ADAPTER_IFACE: self._adapter_props()}
        d = self.by_path.get(path)
        if d is not None and d.exported:
            return {DEVICE_IFACE: self._device_props(d)}
        for dd in self.devices.values():
            for p, ifaces in dd.gatt:
                if p == path:
                    return {k: self._live_props(dd, p, k, v) for k, v in ifaces.items()}
        raise BluezError("org.freedesktop.DBus.Error.UnknownObject", f"no object {path}")

    def _properties(self, msg: Message) -> Message:
        objs = self._props_of(msg.path or "")
        if msg.member == "GetAll":
            return Message.new_method_return(msg, "a{sv}", [objs.get(msg.body[0], {})])
        if msg.member == "Get":
            iface, name = msg.body
            try:
                return Message.new_method_return(msg, "v", [objs[iface][name]])
            except KeyError:
                return Message.new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "No such property '%s'" % name)
        if msg.member == "Set":
            iface, name, value = msg.body
            if msg.path == self.adapter_path and name == "Powered":
                self._set_powered(bool(value.value))
                return Message.new_method_return(msg)
            if iface in objs and name in objs[iface]:
                return Message.new_method_return(msg)  # accepted and ignored (Trusted, Alias...)
            return Message.new_error(msg, "org.freedesktop.DBus.Error.InvalidArgs", "No such property '%s'" % name)
        return Message.new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", f"no method {msg.member}")

    def _adapter_method(self, msg: Message) -> Any:
        m, sender = msg.member, msg.sender or ""
        if m == "SetDiscoveryFilter":
            f = {k: v.value for k, v in msg.body[0].items()}
            self._filters[sender] = f
            if sender in self.discovery_clients:
                self.discovery_clients[sender] = f
            return Message.new_method_return(msg)
        if m == "StartDiscovery":
            if not self.powered:
                raise BluezError(E_NOT_READY, "Resource Not Ready")
            if sender in self.discovery_clients:
                raise BluezError(E_IN_PROGRESS, "Operation already in progress")
            was = bool(self.discovery_clients)
            self.discovery_clients[sender] = dict(self._filters.get(sender, {}))
            reply = Message.new_method_return(msg)
            self._send(reply)
            if not was:
                self._props_changed(self.adapter_path, ADAPTER_IFACE, {"Discovering": Variant("b", True)})
            self._next_adv = 0.0
            return True
        if m == "StopDiscovery":
            if not self.powered:
                raise BluezError(E_NOT_READY, "Resource Not Ready")
            if sender not in self.discovery_clients:
                raise BluezError(E_FAILED, "No discovery started")
            del self.discovery_clients[sender]
            self._send(Message.new_method_return(msg))
            if not self.discovery_clients:
                self._props_changed(self.adapter_path, ADAPTER_IFACE, {"Discovering": Variant("b", False)})
                for d in self.devices.values():
                    if d.exported and not d.connected:
                        self._props_changed(d.path, DEVICE_IFACE, {}, ["RSSI", "TxPower"])
            return True
        if m == "RemoveDevice":
            d = self.by_path.get(msg.body[0])
            if d is None or not d.exported:
                raise BluezError(E_DOES_NOT_EXIST, "Does Not Exist")
            self._disconnect(d)
            d.exported = False
            self._signal("/", OM_IFACE, "InterfacesRemoved", "oas", [d.path, [DEVICE_IFACE, PROPS_IFACE]])
            return Message.new_method_return(msg)
        if m == "GetDiscoveryFilters":
            return Message.new_method_return(msg, "as", [["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData",
                                                           "Discoverable", "Pattern"]])
        raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", f"Method \"{m}\" doesn't exist")

    def _device_method(self, msg: Message, d: SimDevice) -> Any:
        m = msg.member
        if m == "Connect":
            async def go() -> Message:
                await self._connect(d)
                return Message.new_method_return(msg)
            return go()
        if m == "Disconnect":
            if not d.connected and not d.connecting:
                raise BluezError(E_NOT_CONNECTED, "Not Connected")

            if d.connecting and not d.connected:
                d.cancel_connect = True

            async def bye() -> None:
                await asyncio.sleep(0.005)
                self._disconnect(d, [Message.new_method_return(msg)])
            return bye()
        if m in ("Pair", "CancelPairing", "ConnectProfile", "DisconnectProfile"):
            raise BluezError(E_NOT_SUPPORTED, "Operation is not supported")
        raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", f"Method \"{m}\" doesn't exist")

    def _check_att_fault(self, d: SimDevice, c: CharObj) -> None:
        f = d.att_errors.get(c.uuid)
        if f and f[1] != 0:
            f[1] -= 1
            if f[1] == 0:
                del d.att_errors[c.uuid]
            raise AttError(f[0])

    def _char_method(self, msg: Message, d: SimDevice, c: CharObj) -> Any:
        m, sender = msg.member, msg.sender or ""
        if not d.connected:
            raise BluezError(E_NOT_CONNECTED, "Not Connected")
        if m == "ReadValue":
            if READ not in c.flags:
                raise BluezError(E_NOT_PERMITTED, "Read not permitted")
            self._check_att_fault(d, c)
            value = d.model.read(c.uuid)
            offset = int(msg.body[0].get("offset", Variant("q", 0)).value) if msg.body else 0
            if offset > len(value):
                raise BluezError(E_INVALID_ARGS, "Invalid offset")
            c.value = value
            self._send(Message.new_method_return(msg, "ay", [value[offset:]]))
            self._props_changed(c.path, CHAR_IFACE, {"Value": Variant("ay", value)})
            return True
        if m == "WriteValue":
            value = bytes(msg.body[0])
            opts = {k: v.value for k, v in msg.body[1].items()} if len(msg.body) > 1 else {}
            kind = opts.get("type", "request" if WRITE in c.flags else "command")
            if kind == "command" and WRITE_NR not in c.flags or kind != "command" and WRITE not in c.flags:
                raise BluezError(E_NOT_PERMITTED, "Write not permitted")
            self._check_att_fault(d, c)
            if INDICATE in c.flags and not c.notify_clients and c.acquired is None:
                raise AttError(ATT_CCCD_IMPROPERLY_CONFIGURED)
            notes = d.model.write(c.uuid, value)
            self._send(Message.new_method_return(msg))
            for n in notes:
                self._deliver(d, n.char_uuid, n.payload)
            return True
        if m == "StartNotify":
            if not c.can_notify:
                raise BluezError(E_NOT_SUPPORTED, "Operation is not supported")
            if c.acquired is not None:
                raise BluezError(E_NOT_PERMITTED, "Notify acquired")
            if sender in c.notify_clients:
                return Message.new_method_return(msg)
            self._check_att_fault(d, c)
            first = not c.notify_clients
            c.notify_clients.add(sender)
            self._send(Message.new_method_return(msg))
            if first:
                self._props_changed(c.path, CHAR_IFACE, {"Notifying": Variant("b", True)})
            return True
        if m == "StopNotify":
            if sender not in c.notify_clients:
                raise BluezError(E_FAILED, "No notify session started")
            c.notify_clients.discard(sender)
            self._send(Message.new_method_return(msg))
            if not c.notify_clients:
                self._props_changed(c.path, CHAR_IFACE, {"Notifying": Variant("b", False)})
            return True
        if m == "AcquireNotify":
            if NOTIFY not in c.flags:
                raise BluezError(E_NOT_SUPPORTED, "Operation is not supported")
            if c.acquired is not None:
                raise BluezError(E_NOT_PERMITTED, "Notify acquired")
            if c.notify_clients:
                raise BluezError(E_IN_PROGRESS, "In Progress")
            self._check_att_fault(d, c)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            ours.setblocking(False)
            c.acquired = ours
            reply = Message.new_method_return(msg, "hq", [0, ATT_MTU], unix_fds=[theirs.fileno()])
            assert self.bus is not None
            fut = self.bus.send(reply)

            def _close_theirs(_f: Any = None) -> None:
                theirs.close()
            if isinstance(fut, asyncio.Future):
                fut.add_done_callback(_close_theirs)
            else:
                asyncio.get_running_loop().call_later(1.0, _close_theirs)
            asyncio.get_running_loop().add_reader(ours.fileno(), self._acquired_readable, d, c)
            self._props_changed(c.path, CHAR_IFACE, {"NotifyAcquired": Variant("b", True)})
            return True
        if m == "AcquireWrite":
            raise BluezError(E_NOT_SUPPORTED, "Operation is not supported")
        raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", f"Method \"{m}\" doesn't exist")

    def _acquired_readable(self, d: SimDevice, c: CharObj) -> None:
        sock = c.acquired
        if sock is None:
            return
        try:
            data = sock.recv(16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client closed its end: BlueZ ends the notify session
            self._release_acquired(d, c)

    def _desc_method(self, msg: Message, d: SimDevice, path: str) -> Any:
        if not d.connected:
            raise BluezError(E_NOT_CONNECTED, "Not Connected")
        if msg.member == "ReadValue":
            cpath = path.rsplit("/", 1)[0]
            c = d.chars.get(cpath)
            v = b"\x00\x00"
            if c is not None and c.notifying:
                v = b"\x02\x00" if INDICATE in c.flags and NOTIFY not in c.flags else b"\x01\x00"
            return Message.new_method_return(msg, "ay", [v])
        if msg.member == "WriteValue":
            # BlueZ refuses direct CCCD writes: clients must use StartNotify / AcquireNotify
            raise BluezError(E_NOT_PERMITTED, "Write not permitted")
        raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", f"Method \"{msg.member}\" doesn't exist")

    def _client_gone(self, name: str) -> None:
        if name in self.discovery_clients:
            del self.discovery_clients[name]
            if not self.discovery_clients:
                self._props_changed(self.adapter_path, ADAPTER_IFACE, {"Discovering": Variant("b", False)})
        self._filters.pop(name, None)
        for d in self.devices.values():
            for c in d.chars.values():
                if name in c.notify_clients:
                    c.notify_clients.discard(name)
                    if not c.notify_clients and d.connected:
                        self._props_changed(c.path, CHAR_IFACE, {"Notifying": Variant("b", False)})

    # -- faults ---------------------------------------------------------------------------------
    def fault(self, address: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Inject a fault; see :mod:`firmware_sims.bluez.control` for the kinds and parameters."""
        now = self.now_s()
        if kind == "adapter_off":
            self._set_powered(False)
            secs = float(params.get("seconds", 0))
            self.power_on_at = now + secs if secs > 0 else -1.0
            return {"powered": False, "power_on_at_s": self.power_on_at}
        if kind == "adapter_on":
            self._set_powered(True)
            return {"powered": True}
        d = self.devices.get(address.upper())
        if d is None:
            raise BluezError(E_DOES_NOT_EXIST, f"no simulated device {address}")
        if kind == "link_drop":
            was = d.connected
            self._disconnect(d)
            return {"was_connected": was}
        if kind == "out_of_range":
            secs = float(params.get("seconds", 10))
            d.out_of_range_until = now + secs
            self._disconnect(d)
            return {"until_s": d.out_of_range_until}
        if kind == "refuse_connect":
            d.refuse_connects = int(params.get("count", 1))
            d.refuse_error = str(params.get("error", "le-connection-abort-by-remote"))
            return {"refuse_connects": d.refuse_connects}
        if kind == "slow_discovery":
            d.slow_discovery_s = float(params.get("seconds", 5))
            return {"slow_discovery_s": d.slow_discovery_s}
        if kind == "att_error":
            uuid = uuid128(params["char"]) if "char" in params else next(iter(d.model.nominal_rates_hz()))
            d.att_errors[uuid] = [int(params.get("code", 0x0E)), int(params.get("count", 1))]
            return {"char": uuid, "code": d.att_errors[uuid][0], "count": d.att_errors[uuid][1]}
        if kind == "burst":
            d.burst_until = now + float(params.get("seconds", 5))
            return {"until_s": d.burst_until}
        raise BluezError(E_INVALID_ARGS, f"unknown fault kind {kind!r}; known: link_drop, out_of_range, refuse_connect, "
                                         "slow_discovery, att_error, burst, adapter_off, adapter_on")

    def device_info(self) -> list[dict[str, Any]]:
        return [{"address": d.model.address, "name": d.model.name, "kind": d.model.kind, "path": d.path,
                 "rates_hz": d.model.nominal_rates_hz()} for d in self.devices.values()]

    def stats_json(self) -> dict[str, Any]:
        return {"t_s": self.now_s(), **self.stats,
                "devices": {d.model.address: {"connected": d.connected, "sent": dict(d.sent), "dropped": d.dropped,
                                              "disconnects": d.disconnects} for d in self.devices.values()}}
