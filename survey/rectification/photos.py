"""Report photos: survey.photos, kept under instance/rectification_photos."""
from __future__ import annotations

from pathlib import Path

from survey import photos as _photos
from survey.photos import MAX_BYTES, MAX_PHOTOS, PhotoError, StoredPhoto, reencode

__all__ = ["FOLDER", "MAX_BYTES", "MAX_PHOTOS", "PhotoError", "StoredPhoto", "folder", "path_of", "reencode", "remove", "store"]
FOLDER = "rectification_photos"


def store(instance_path: str, data: bytes, filename: str = "") -> StoredPhoto:
    return _photos.store(instance_path, data, filename, FOLDER)


def path_of(instance_path: str, stored_name: str) -> Path:
    return _photos.path_of(instance_path, stored_name, FOLDER)


def remove(instance_path: str, names: list[str]) -> None:
    _photos.remove(instance_path, names, FOLDER)


def folder(instance_path: str) -> Path:
    return _photos.folder(instance_path, FOLDER)
