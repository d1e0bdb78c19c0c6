"""LiveKit token server: the standard token endpoint with authentication and least privilege.

Run it with `python -m token_server`; build the ASGI app with
`token_server.factory.create_app(TokenServerSettings())`.
"""

__version__ = "0.1.0"
