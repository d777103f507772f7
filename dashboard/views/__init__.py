"""Dashboard pages, one file per page.

Not named pages/: Streamlit treats a pages/ folder beside the entry script as an old-style
(v1) multipage app, and a first request for /runs would then run that file without app.py
(no shared filters). st.navigation in app.py lists these files explicitly.
"""
