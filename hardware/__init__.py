"""Hardware awareness: device identity, latency timers and saved device profiles."""

from hardware.identity import DeviceIdentity, identify
from hardware.profile import MEASUREMENT_COLUMNS, PROFILES_DIR, DeviceProfile
from hardware.timing import Timing, compare_interleaved, make_input, measure, measure_latency

__all__ = [
    "MEASUREMENT_COLUMNS", "PROFILES_DIR", "DeviceIdentity", "DeviceProfile", "Timing",
    "compare_interleaved", "identify", "make_input", "measure", "measure_latency",
]
