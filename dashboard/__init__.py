"""The Streamlit dashboard, shipped as the package ``ecotrain.dashboard``.

``ecotrain dashboard`` runs ``app.py`` here with Streamlit and hands it the database URL in
the environment variable below. Importing this package imports nothing heavy.
"""

DB_ENV = "ECOTRAIN_DASHBOARD_DB"
