"""API keys reload from the keys file without a restart."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from entail.auth import KeyRing, key_entry
from entail.settings import Settings


def _write(path: Path, entries: list[dict[str, object]]) -> None:
    # beside, then renamed over: the way an operator should replace the file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    os.replace(tmp, path)


def test_a_removed_key_stops_working_and_an_added_one_works(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    _write(keys, [key_entry("ent_old", "old", "acme", ["decide"])])
    ring = KeyRing.from_settings(Settings(api_keys_file=keys, api_keys_reload_s=0.05))
    assert ring.lookup("ent_old") is not None and ring.lookup("ent_new") is None
    _write(keys, [key_entry("ent_new", "new", "acme", ["decide"])])
    time.sleep(0.06)
    assert ring.lookup("ent_old") is None  # revoked without a restart
    found = ring.lookup("ent_new")
    assert found is not None and found.id == "new"


def test_a_broken_file_keeps_the_keys_read_last(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    _write(keys, [key_entry("ent_a", "a", "acme", ["decide"])])
    ring = KeyRing.from_settings(Settings(api_keys_file=keys, api_keys_reload_s=0.05))
    keys.write_text("[{not json")
    time.sleep(0.06)
    assert ring.lookup("ent_a") is not None
    _write(keys, [])  # and a later good file is read
    time.sleep(0.06)
    assert ring.lookup("ent_a") is None and len(ring) == 0


def test_reload_off_and_not_more_often_than_asked(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    _write(keys, [key_entry("ent_a", "a", "acme", ["decide"])])
    frozen = KeyRing.from_settings(Settings(api_keys_file=keys, api_keys_reload_s=0))
    slow = KeyRing.from_settings(Settings(api_keys_file=keys, api_keys_reload_s=3600))
    _write(keys, [])
    time.sleep(0.02)
    assert frozen.lookup("ent_a") is not None and slow.lookup("ent_a") is not None
