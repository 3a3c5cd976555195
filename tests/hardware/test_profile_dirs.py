"""A user's profiles live in their own data folder; the profiles shipped with nas are only read."""

import hashlib

from nas.hardware import (
    SHIPPED_PROFILES_DIR,
    DeviceProfile,
    default_profile_path,
    identify,
    profile_path,
    user_profiles_dir,
)


def _digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in SHIPPED_PROFILES_DIR.glob("*.json")}


def test_a_saved_profile_goes_to_the_user_folder_and_is_found_first(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_PROFILES_DIR", str(tmp_path / "mine"))
    shipped = _digests()
    ident = identify("cpu", threads=1)
    assert user_profiles_dir() == tmp_path / "mine"
    path = DeviceProfile(ident, meta={"note": "mine"}).save()
    assert path == tmp_path / "mine" / f"{ident.device_id}.json"
    assert default_profile_path(ident.device_id) == path == profile_path("cpu", 1)
    assert _digests() == shipped  # the shipped profile of the same device is untouched


def test_without_a_user_profile_the_shipped_one_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_PROFILES_DIR", str(tmp_path / "empty"))
    shipped = sorted(SHIPPED_PROFILES_DIR.glob("*.json"))
    assert shipped, "nas ships at least one profile"
    device_id = shipped[0].stem
    assert default_profile_path(device_id) == shipped[0]
    assert default_profile_path("cpu-nowhere-1t") == tmp_path / "empty" / "cpu-nowhere-1t.json"


def test_the_xdg_data_folder_is_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("NAS_PROFILES_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert user_profiles_dir() == tmp_path / "nas" / "profiles"
