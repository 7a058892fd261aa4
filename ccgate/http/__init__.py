"""Serving HTTP: the gevent WSGI server with strict request heads."""
