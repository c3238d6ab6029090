"""What a FIT file is about: file type, device, sport, times, laps, sessions, developer fields.

Fed with decoded messages (``{field_num: raw value}``) by either decoder, so both give the same
summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from .profile import FILE_TYPES, FIT_EPOCH_S, MANUFACTURERS, MIN_ABSOLUTE_TIMESTAMP, SPORTS, Mesg


@dataclass(frozen=True, slots=True)
class DeveloperField:
    """A developer (Connect IQ) field declared by a ``field_description`` message.

    ``units`` is the unit string the developer gave; ``base_type`` the FIT base type id;
    ``native_field_num`` the profile field it stands for, if any; ``messages`` the global message
    numbers whose definitions carry it.
    """

    developer_data_index: int
    field_number: int
    name: str | None
    units: str | None
    base_type: int | None
    native_field_num: int | None
    application_id: str | None
    messages: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FitSummary:
    """Summary of an imported file (first file of a chain for the device; counts over all).

    Times are µs since the Unix epoch (UTC); ``duration_s`` is the sessions' total elapsed time,
    or last minus first record time when there is no session.
    """

    file_type: str | None
    manufacturer: str | None
    product: int | None
    serial_number: int | None
    sport: str | None
    start_time_us: int | None
    duration_s: float | None
    laps: int
    sessions: int
    files: int
    time_created_us: int | None
    relative_time: bool  # some timestamps were relative (< 0x10000000: seconds since power-on)
    avg_speed_mps: float | None = None  # first session's enhanced_avg_speed or avg_speed
    first_record_us: int | None = None  # time of the first / last record with a timestamp
    last_record_us: int | None = None

    @property
    def device_id(self) -> str:
        """``fit-<manufacturer>-<product>-<serial>`` (``unknown``/0 for what the file lacks)."""
        return f"fit-{self.manufacturer or 'unknown'}-{self.product or 0}-{self.serial_number or 0}"


def fit_time_us(raw: int) -> int:
    """FIT ``date_time`` (s since 1989-12-31) to µs since the Unix epoch."""
    return (int(raw) + FIT_EPOCH_S) * 1_000_000


class SummaryCollector:
    def __init__(self) -> None:
        self.file_id: dict | None = None
        self.sessions: list[dict] = []
        self.laps = 0
        self.sport: int | None = None
        self.files = 0
        self.first_t: int | None = None
        self.last_t: int | None = None
        self.relative = False
        self._dev_ids: dict[int, str | None] = {}
        self.dev_fields: dict[tuple[int, int], DeveloperField] = {}
        self._dev_msgs: dict[tuple[int, int], set[int]] = {}

    def add(self, gmn: int, f: dict) -> None:
        if gmn == Mesg.FILE_ID:
            if self.file_id is None:
                self.file_id = f
        elif gmn == Mesg.SESSION:
            self.sessions.append(f)
        elif gmn == Mesg.LAP:
            self.laps += 1
        elif gmn == Mesg.SPORT:
            if self.sport is None:
                self.sport = f.get(0)
        elif gmn == Mesg.DEVELOPER_DATA_ID:
            idx = f.get(3)
            app = f.get(1)
            if isinstance(app, tuple) and all(isinstance(x, int) and 0 <= x < 256 for x in app):
                app = bytes(app).hex()
            elif isinstance(app, (bytes, bytearray)):
                app = bytes(app).hex()
            else:
                app = None
            if isinstance(idx, int):
                self._dev_ids[idx] = app
        elif gmn == Mesg.FIELD_DESCRIPTION:
            idx, num = f.get(0), f.get(1)
            if isinstance(idx, int) and isinstance(num, int) and (idx, num) not in self.dev_fields:
                self.dev_fields[(idx, num)] = DeveloperField(
                    idx, num, _s(f.get(3)), _s(f.get(8)), f.get(2) if isinstance(f.get(2), int) else None,
                    f.get(15) if isinstance(f.get(15), int) else None, self._dev_ids.get(idx))

    def dev_used(self, gmn: int, dev_index: int, num: int) -> None:
        self._dev_msgs.setdefault((dev_index, num), set()).add(gmn)

    def record_times(self, first_raw: int, last_raw: int) -> None:
        if self.first_t is None:
            self.first_t = first_raw
        self.last_t = last_raw
        if min(first_raw, last_raw) < MIN_ABSOLUTE_TIMESTAMP:
            self.relative = True

    def developer_fields(self) -> list[DeveloperField]:
        out = []
        for key, d in self.dev_fields.items():
            msgs = tuple(sorted(self._dev_msgs.get(key, ())))
            out.append(DeveloperField(d.developer_data_index, d.field_number, d.name, d.units, d.base_type,
                                      d.native_field_num, d.application_id, msgs))
        return out

    def summary(self) -> FitSummary:
        fid = self.file_id or {}
        man = fid.get(1)
        man_s = MANUFACTURERS.get(man, str(man)) if isinstance(man, int) else None
        ftype = fid.get(0)
        sport = self.sport
        start = None
        dur = None
        if self.sessions:
            s0 = self.sessions[0]
            if sport is None and isinstance(s0.get(5), int):
                sport = s0.get(5)
            st = s0.get(2)
            start = fit_time_us(st) if isinstance(st, int) else None
            el = [s.get(7) for s in self.sessions if isinstance(s.get(7), int)]
            dur = sum(el) / 1000.0 if el else None
        if start is None and self.first_t is not None:
            start = fit_time_us(self.first_t)
        if dur is None and self.first_t is not None and self.last_t is not None:
            dur = float(self.last_t - self.first_t)
        avg = None
        if self.sessions:
            for num in (124, 14):
                v = self.sessions[0].get(num)
                if isinstance(v, int):
                    avg = v / 1000.0
                    break
        tc = fid.get(4)
        return FitSummary(
            file_type=FILE_TYPES.get(ftype, str(ftype)) if isinstance(ftype, int) else None,
            manufacturer=man_s,
            product=fid.get(2) if isinstance(fid.get(2), int) else None,
            serial_number=fid.get(3) if isinstance(fid.get(3), int) else None,
            sport=SPORTS.get(sport, str(sport)) if isinstance(sport, int) else None,
            start_time_us=start,
            duration_s=dur,
            laps=self.laps,
            sessions=len(self.sessions),
            files=self.files,
            time_created_us=fit_time_us(tc) if isinstance(tc, int) else None,
            relative_time=self.relative,
            avg_speed_mps=avg,
            first_record_us=fit_time_us(self.first_t) if self.first_t is not None else None,
            last_record_us=fit_time_us(self.last_t) if self.last_t is not None else None,
        )


def _s(v: object) -> str | None:
    return v if isinstance(v, str) else None
