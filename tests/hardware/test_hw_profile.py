"""Device identity and the profile JSON round trip."""

import json
import re

import pytest
import torch

from nas.errors import HardwareError
from nas.hardware import MEASUREMENT_COLUMNS, DeviceIdentity, DeviceProfile, identify


def test_identify_cpu_describes_the_machine():
    ident = identify("cpu", threads=1)
    assert ident.kind == "cpu" and ident.name and ident.logical_cores >= 1
    assert ident.threads == 1
    assert ident.torch_version == torch.__version__
    assert {"mkldnn", "mkl", "quantized_engine"} <= set(ident.backend)
    major_minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    assert re.fullmatch(rf"cpu-[a-z0-9-]+-1t-torch{re.escape(major_minor)}", ident.device_id)
    assert identify("cpu", threads=2).device_id.endswith(f"-2t-torch{major_minor}")
    again = DeviceIdentity.from_json(json.loads(json.dumps(ident.to_json())))
    assert again == ident


def test_identify_rejects_bad_requests():
    with pytest.raises(HardwareError, match="threads"):
        identify("cpu", threads=0)
    with pytest.raises(HardwareError, match="npu"):
        identify("npu")
    if not torch.cuda.is_available():
        with pytest.raises(HardwareError, match="no CUDA"):
            identify("cuda")


def _row(ms: float) -> dict:
    return {"device_id": "cpu-x-1t-torch2.13", "kind": "conv", "config": {"cin": 3, "k": [3, 3]},
            "batch_size": 1, "median_ms": ms, "iqr_ms": 0.01, "repeats": 9, "device": "cpu"}


def test_profile_json_round_trip(tmp_path):
    prof = DeviceProfile(identify("cpu", 1), [_row(0.5), _row(0.25)],
                         [{"name": "m", "batch_size": 1, "median_ms": 1.0, "iqr_ms": 0.1,
                           "kernels": [{"kind": "call", "config": {}}]}], {"seed": 0})
    path = prof.save(tmp_path / "p.json")
    text = path.read_text()
    json.loads(text)  # plain JSON, no pickles
    back = DeviceProfile.load(path)
    assert back.identity == prof.identity
    assert back.measurements == prof.measurements and back.models == prof.models
    assert back.meta == {"seed": 0}
    assert set(back.measurements[0]) == set(MEASUREMENT_COLUMNS)
    default = prof.save(tmp_path / f"{prof.device_id}.json")
    assert default.name == f"{prof.device_id}.json"


def test_profile_load_errors_name_the_file(tmp_path):
    with pytest.raises(HardwareError, match="does not exist"):
        DeviceProfile.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HardwareError, match="bad.json"):
        DeviceProfile.load(bad)
    row = _row(1.0)
    del row["median_ms"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"identity": identify().to_json(), "measurements": [row]}))
    with pytest.raises(HardwareError, match="median_ms"):
        DeviceProfile.load(partial)
