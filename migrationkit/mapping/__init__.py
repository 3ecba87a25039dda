"""Mappings: how any MongoDB collection becomes PostgreSQL tables, every BSON value kept.

``spec`` says what a mapping is, ``types`` what each BSON type becomes, ``normalize``
turns one document into rows, ``toml`` reads and writes mappings, ``sql`` holds the
statements. All of it is pure Python: no database is needed to use or test it.
"""
