"""HTTP surfaces, one blueprint each; they translate HTTP to gateway calls and back.

``request`` (the body reader, the client's headers and socket, the session), ``auth`` (tenant
keys, ``tenant_required``), ``errors`` (each surface's error shape), ``hooks`` (request ids,
access log, CORS) are shared by the blueprints; ``resources`` is the owned-objects glue of
``/anthropic``; ``reports`` the dashboard's numbers.
"""
