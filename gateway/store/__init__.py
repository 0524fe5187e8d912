"""The stock store: its port, its schema and migrations, and the SQLAlchemy Core adapter."""
