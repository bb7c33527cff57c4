"""The staff console: what patients asked, what went unanswered, and how to improve it.

A small Sanic app of its own (`python -m console`, started by `make run` when a staff
password or staff accounts are set), bound to 127.0.0.1 by default. It reads the
conversations where Rasa stores them (the `events` table of the SQL tracker store:
SQLite under DATA_DIR or PostgreSQL at TRACKER_STORE_URL): no second copy of
patients' messages. Guide for clinic staff: docs/console.md.

One job per module:
  app.py          the web app: routes, who may see what, security headers
  auth.py         staff accounts (Argon2 hashes), sign-in lock-out, sessions, CSRF tokens
  database.py     the connection, the console's own migrations (indexes, the "handled" table)
  queries.py      read-only queries over Rasa's events table (SQLite and PostgreSQL)
  privacy.py      masking of phone numbers and e-mail addresses in patients' words
  similarity.py   grouping unanswered questions by similar wording (TF-IDF)
  charts.py       the charts, as SVG generated here (no CDN, no script)
  pages.py        the HTML pages (Jinja2 templates in templates/, autoescaped)
  export.py       CSV export of every list
  proposals.py    training proposals to data/review/, and the reviewer's accept/reject command
"""
