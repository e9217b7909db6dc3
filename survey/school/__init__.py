"""A school's board: /school/ (views.py), its campaign progress and class QR sheet, and its template."""
