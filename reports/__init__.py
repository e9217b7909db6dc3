"""Figures and documents: colour scales, HTML heatmaps, plotly figures, PDF reports, QR sheets.

Takes numbers and returns figures or bytes; knows nothing of HTTP or the database.
"""
