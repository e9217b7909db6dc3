"""The shared read layer: what several areas show, read from stored runs and responses.

Dashboards (dashboard, wave_changes), the fieldwork counts, exports (exports, exports_pg,
export_jobs) and documents (reporting, documents: PDFs cached per run). Below the area packages
(public, office, school, entry, rectification), above the core (db, models, results, refresh...):
nothing here imports an area package or handles a request of its own.
"""
