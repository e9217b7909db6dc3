"""The city and district offices: /office/ pages (views.py), questionnaire versions (questionnaire_views.py), what
they show (dashboard, wave_changes, fieldwork), exports, reports and PDFs, and their templates."""
