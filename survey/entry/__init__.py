"""Paper entry by grid workers: /entry/ (views.py) and its templates."""
