"""An example host service embedding the engine (FastAPI over the host's own database).

``app.create_app(engine)`` builds the application; ``host`` holds the host's own side (its
staff, its tables, its transactions). See ``README.md`` in this folder.
"""
