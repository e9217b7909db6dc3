"""Rectification (整改): responsible units, tasks from the problem list, reports with photos, closing.

    units.py   units (帮包单位/责任单位): CSV import, edits, which units an account sees
    tasks.py   tasks, the status machine and its history, what each account sees
    photos.py  report photos: checked by decoding, re-encoded, stored under instance/ with random names
    views.py   the blueprint /rectification/ (office and unit pages) and its flask commands
    demo.py    the demo city's units, unit logins and tasks in every status
"""
from __future__ import annotations
