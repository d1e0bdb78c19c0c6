"""The Apaleo backend: REST client with OAuth2 client credentials, and the `PMS` adapter."""

from tools.pms.apaleo.client import ApaleoClient, ApaleoError, ApaleoNotFound
from tools.pms.apaleo.pms import ApaleoPMS

__all__ = ["ApaleoClient", "ApaleoError", "ApaleoNotFound", "ApaleoPMS"]
