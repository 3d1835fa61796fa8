"""The EMR OpenAPI client: typed requests, ACS3 signing, httpx transport, errors, credentials.

Knows nothing of Kubernetes: the controller passes it plain requests and credentials.
"""
