"""Photos answering a questionnaire's ``image`` question: checked and re-encoded as 整改 photos are.

A photo is stored privately under instance/answer_photos when its form is posted, before the
answers are checked, and the answer is its random stored name. A page shown again (an answer to
fix) cannot give the file back to the browser, so it carries the stored name signed instead
(:func:`carried`): a name typed into the form by hand is never taken, so no one can claim another
respondent's photo. Files of a submission that is then not stored stay until housekeeping; they
are never served by name from a request.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forms import Definition
from survey import photos
from survey.signing import sign, unsign

FOLDER = "answer_photos"
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
                stored = photos.store(instance_path, upload.stream.read(photos.MAX_BYTES + 1), "照片", FOLDER)
            except photos.PhotoError as exc:
                values[code], errors[code] = None, str(exc)
                continue
            written.append(stored.name)
            values[code] = stored.name
            continue
        signed = form.get(code) or ""
        values[code] = unsign(PURPOSE, signed) if signed else None
    return values, errors, written


def path_of(instance_path: str, stored_name: str):
    """Return where an answer's photo lives (the name comes from the database)."""
    return photos.path_of(instance_path, stored_name, FOLDER)
