"""Photos answering a questionnaire's ``image`` question: checked and re-encoded as 整改 photos are.

A photo is stored privately, under instance/answer_photos/pending, when a post of the page with a
valid one-time key sends it (the view checks the key first), and the answer is its random stored
name. A page shown again (an answer to fix) cannot give the file back to the browser, so it
carries the stored name signed instead (:func:`carried`): a name typed into the form by hand is
never taken, so no one can claim another respondent's photo. When the response is stored its
photos move to instance/answer_photos (:func:`keep`); what stays pending (a submission never
finished, a double tap) is deleted by housekeeping after a day (:func:`forget_pending`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forms import Definition
from survey import photos
from survey.signing import sign, unsign

FOLDER = "answer_photos"
PENDING = "answer_photos/pending"
PENDING_DAYS = 1
PURPOSE = "answer-photo"
MAX_PER_FORM = 5  # image questions a questionnaire may ask that are read from one post


def image_items(definition: Definition) -> list[str]:
    """Return the codes of the questionnaire's photo questions."""
    return [item.code for item in definition.items if item.handler.name == "image"]


def upload_limit(definition: Definition) -> int:
    """Return the largest body a post of this questionnaire may send (its photos and its text)."""
    return len(image_items(definition)[:MAX_PER_FORM]) * photos.MAX_BYTES + 256 * 1024


def carried(name: str) -> str:
    """Return a stored photo's name signed, for the hidden field of a page shown again."""
    return sign(PURPOSE, name)


def receive(definition: Definition, form: Mapping[str, str], files: Mapping[str, Any],
            instance_path: str) -> tuple[dict[str, str | None], dict[str, str], list[str]]:
    """Store the photos a post sends; return ({image question: stored name or None}, errors, new names).

    A question with a file gets the file checked, re-encoded and stored; one without keeps the photo
    a page shown again carried (its signed name), else has none. The new names are the files this
    call wrote (to remove when the submission is refused for good).
    """
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    written: list[str] = []
    for code in image_items(definition)[:MAX_PER_FORM]:
        upload = files.get(code)
        if upload is not None and upload.filename:
            try:
                stored = photos.store(instance_path, upload.stream.read(photos.MAX_BYTES + 1), "照片", PENDING)
            except photos.PhotoError as exc:
                values[code], errors[code] = None, str(exc)
                continue
            written.append(stored.name)
            values[code] = stored.name
            continue
        signed = form.get(code) or ""
        values[code] = unsign(PURPOSE, signed) if signed else None
    return values, errors, written


def keep(definition: Definition, answers: Mapping[str, str | None], instance_path: str) -> None:
    """Move the photos of a stored response out of pending (a photo kept already stays where it is)."""
    for code in image_items(definition)[:MAX_PER_FORM]:
        name = answers.get(code)
        if name:
            pending = photos.path_of(instance_path, name, PENDING)
            if pending.exists():
                os.replace(pending, photos.path_of(instance_path, name, FOLDER))


def forget_pending(instance_path: str, now: float | None = None) -> int:
    """Delete the pending photos older than a day (no response holds them); return how many."""
    folder = Path(instance_path) / PENDING
    if not folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - PENDING_DAYS * 86_400
    gone = 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except FileNotFoundError:  # another process's housekeeping got there first
            continue
    return gone


def path_of(instance_path: str, stored_name: str):
    """Return where an answer's photo lives (the name comes from the database)."""
    return photos.path_of(instance_path, stored_name, FOLDER)
