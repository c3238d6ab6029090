"""Shared data loaders for the dsp tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def pyhrv_long() -> np.ndarray:
    return np.load(DATA / "hrv" / "pyhrv_SampleNNISeriesLong.npy").astype(np.float64)


@pytest.fixture(scope="session")
def pyhrv_report() -> dict:
    return json.loads((DATA / "hrv" / "pyhrv_sample_report.json").read_text())


@pytest.fixture(scope="session")
def rhenan_cases() -> dict:
    return {c["name"]: c for c in json.loads((DATA / "hrv" / "rhenanbartels_hrv_cases.json").read_text())["cases"]}


@pytest.fixture(scope="session")
def rest_rri() -> np.ndarray:
    return np.loadtxt(DATA / "rr" / "rhenanbartels_hrv_rest_rri.txt")


@pytest.fixture(scope="session")
def polar_rr() -> np.ndarray:
    with open(DATA / "rr" / "kbroman_detectPVC_polar_h10.csv") as fh:
        return np.array([float(r["rr"]) for r in csv.DictReader(fh) if r["rr"]])


def clean_rr(n: int, seed: int = 0) -> np.ndarray:
    """Plausible resting NN series (ms): breathing (RSA), slow waves, AR(1) beat noise."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    noise = np.zeros(n)
    e = rng.normal(0, 4.0, n)
    for k in range(1, n):
        noise[k] = 0.6 * noise[k - 1] + e[k]
    return 850 + 18 * np.sin(2 * np.pi * i / 5.2) + 35 * np.sin(2 * np.pi * i / 97 + 1.0) + noise
