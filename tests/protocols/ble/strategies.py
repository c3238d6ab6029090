"""Hypothesis strategies that build valid field sets straight from the specification tables."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from protocols.ble import cycling, device_information as dis, ftms_data, ftms_feature, running
from protocols.ble._codegen import Field, FlagBit, Spec
from protocols.ble.ftms_control import CONTROL_POINT_PARAMETERS, MACHINE_STATUS_PARAMETERS

#: every table-generated characteristic: uuid -> spec
SPECS: dict[int, Spec] = {
    s.uuid: s
    for s in (
        cycling.CSC_MEASUREMENT_SPEC, cycling.CSC_FEATURE_SPEC, cycling.SENSOR_LOCATION_SPEC,
        cycling.CYCLING_POWER_MEASUREMENT_SPEC, cycling.CYCLING_POWER_FEATURE_SPEC,
        running.RSC_MEASUREMENT_SPEC, running.RSC_FEATURE_SPEC,
        ftms_data.TREADMILL_DATA_SPEC, ftms_data.CROSS_TRAINER_DATA_SPEC, ftms_data.ROWER_DATA_SPEC,
        ftms_data.INDOOR_BIKE_DATA_SPEC,
        ftms_feature.SUPPORTED_SPEED_RANGE_SPEC, ftms_feature.SUPPORTED_INCLINATION_RANGE_SPEC,
        ftms_feature.SUPPORTED_RESISTANCE_LEVEL_RANGE_SPEC, ftms_feature.SUPPORTED_HEART_RATE_RANGE_SPEC,
        ftms_feature.SUPPORTED_POWER_RANGE_SPEC, dis.SYSTEM_ID_SPEC, dis.PNP_ID_SPEC,
    )
}


def value_of(f: Field, raw: int) -> Any:
    return raw if not f.scaled else raw * f.num / f.den


def field_value(f: Field) -> st.SearchStrategy[Any]:
    lo, hi = f.raw_range
    return st.integers(lo, hi).map(lambda r: value_of(f, r))


@st.composite
def spec_fields(draw: st.DrawFn, spec: Spec) -> tuple[dict[str, Any], int]:
    """(fields, expected payload length) for ``spec``; every flag combination is reachable."""
    d: dict[str, Any] = {}
    length = spec.flags_size
    for item in spec.items:
        if isinstance(item, FlagBit):
            d[item.name] = draw(st.booleans())
            continue
        present = item.bit is None or draw(st.booleans())
        if present:
            length += item.size
        for f in item.fields:
            if f.kind == "u12pair":
                a, b = draw(st.integers(0, 0xFFF)), draw(st.integers(0, 0xFFF))
                d[f.name], d[f.name2] = (a, b) if present else (None, None)  # type: ignore[index]
            else:
                d[f.name] = draw(field_value(f)) if present else None
    if spec.flags_size:
        reserved = ((1 << (8 * spec.flags_size)) - 1) & ~spec.defined_mask
        d["unknown_flag_bits"] = draw(st.integers(0, reserved)) & reserved
    trailing = draw(st.integers(0, 3))
    d["trailing_bytes"] = trailing
    return d, length + trailing


@st.composite
def heart_rate_fields(draw: st.DrawFn) -> dict[str, Any]:
    rr = draw(st.none() | st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=12))
    return {
        "heart_rate_bpm": draw(st.integers(0, 0xFFFF)),
        "sensor_contact": draw(st.sampled_from([None, False, True])),
        "energy_expended_kj": draw(st.none() | st.integers(0, 0xFFFF)),
        "rr_intervals_1024": rr,
        "unknown_flag_bits": draw(st.sampled_from([0, 0x20, 0x40, 0x80, 0xE0])),
        "trailing_bytes": draw(st.integers(0, 1)),
    }


@st.composite
def op_coded_fields(draw: st.DrawFn, table: dict) -> dict[str, Any]:
    op = draw(st.sampled_from(sorted(table)))
    fields = table[op]
    d: dict[str, Any] = {"op_code": op}
    if isinstance(fields, int):
        d["targeted_time_in_hr_zones_s"] = draw(st.lists(st.integers(0, 0xFFFF), min_size=fields, max_size=fields))
    else:
        for f in fields:
            d[f.name] = draw(field_value(f))
    d["trailing_bytes"] = draw(st.integers(0, 2))
    return d


control_point_requests = op_coded_fields(CONTROL_POINT_PARAMETERS)
machine_statuses = op_coded_fields(MACHINE_STATUS_PARAMETERS)


@st.composite
def control_point_responses(draw: st.DrawFn) -> dict[str, Any]:
    d: dict[str, Any] = {"op_code": 0x80, "request_op_code": draw(st.integers(0, 0xFF)), "result_code": draw(st.integers(0, 0xFF))}
    if d["request_op_code"] == 0x13 and d["result_code"] == 1:
        d["target_speed_low_kmh"] = draw(st.integers(0, 0xFFFF)) / 100
        d["target_speed_high_kmh"] = draw(st.integers(0, 0xFFFF)) / 100
    return d


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
