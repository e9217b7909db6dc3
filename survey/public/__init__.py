"""The residents' side: /s/<token>, the questionnaire for residents, parents and pupils (views.py) and its templates."""
