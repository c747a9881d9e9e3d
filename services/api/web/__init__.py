"""The web app: server-rendered pages at / over the same commands and queries as /api."""
