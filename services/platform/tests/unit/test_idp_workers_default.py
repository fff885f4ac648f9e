"""`authpi up` serves the IdP port with one process per available core unless
AUTHPI_IDP_WORKERS says otherwise: the shipped configuration is the fast one."""

import os
from pathlib import Path

from authpi.config import available_cores, from_env


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_unset_idp_workers_is_one_process_per_available_core():
    assert available_cores() >= 1
    assert from_env({}).idp_workers == available_cores()
    assert from_env({"AUTHPI_IDP_WORKERS": ""}).idp_workers == available_cores()


def test_explicit_idp_workers_wins_over_the_core_count():
    assert from_env({"AUTHPI_IDP_WORKERS": "1"}).idp_workers == 1
    assert from_env({"AUTHPI_IDP_WORKERS": "7"}).idp_workers == 7


def test_available_cores_without_a_cgroup_quota_is_the_affinity(tmp_path: Path):
    assert available_cores(tmp_path / "missing") == _affinity()
    unlimited = tmp_path / "cpu.max"
    unlimited.write_text("max 100000\n")
    assert available_cores(unlimited) == _affinity()


def test_available_cores_is_capped_by_a_cgroup_quota_rounded_up(tmp_path: Path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("50000 100000\n")  # half a core
    assert available_cores(cpu_max) == 1
    cpu_max.write_text(f"{100000 * _affinity() + 1} 100000\n")  # just over every core
    assert available_cores(cpu_max) == _affinity()
    cpu_max.write_text("150000 100000\n")  # a core and a half
    assert available_cores(cpu_max) == min(2, _affinity())
