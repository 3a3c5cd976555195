"""Hardware awareness: device identity, latency timers and saved device profiles."""

from nas.hardware.identity import DEFAULT_THREADS, DeviceIdentity, identify
from nas.hardware.profile import (
    MEASUREMENT_COLUMNS,
    SHIPPED_PROFILES_DIR,
    DeviceProfile,
    default_profile_path,
    profile_dirs,
    profile_path,
    user_profiles_dir,
)
from nas.hardware.timing import Timing, compare_interleaved, make_input, measure, measure_latency

__all__ = [
    "DEFAULT_THREADS", "MEASUREMENT_COLUMNS", "SHIPPED_PROFILES_DIR", "DeviceIdentity", "DeviceProfile",
    "Timing",
    "default_profile_path", "profile_dirs", "profile_path", "user_profiles_dir",
    "compare_interleaved", "identify", "make_input", "measure", "measure_latency",
]
