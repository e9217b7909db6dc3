"""Figures and documents: colour scales, HTML heatmaps, SVG charts, PDF reports, QR sheets.

Takes numbers and returns figures or bytes; knows nothing of HTTP or the database.
"""
