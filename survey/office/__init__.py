"""The city and district offices: /office/ pages (views.py), accounts (accounts.py), the fieldwork
monitor (fieldwork_views.py), questionnaire versions (questionnaire_views.py) and their templates.
What the pages show is read by the shared read layer, survey/reading/."""
