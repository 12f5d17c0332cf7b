"""The dashboard (SPEC §12): server-rendered pages under /ui/, behind DASHBOARD_PASSWORD."""
