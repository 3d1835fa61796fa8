"""The EMR OpenAPI client: typed requests, ACS3 signing, HTTP calls (aiohttp), errors, credentials.

Knows nothing of Kubernetes: the controller passes it plain requests and credentials.

- ``client``: ``EmrClient``, one typed async method per action, pagination iterators.
- ``wire``: builds one signed request exactly as the official SDK sends it.
- ``responses``: the one function turning an HTTP response into a result or an ``ApiError``.
- ``http``: a request and its answer as plain values, and the aiohttp transport that sends them.
- ``aiohttp_errors``: the one place aiohttp exceptions become ``RequestNotSentError`` or
  ``OutcomeUnknownError``.
- ``endpoints``: which host serves a region (public, VPC, or an override).
- ``credentials``: ``StaticCredentials``, ``DefaultChainCredentials`` (Alibaba's default chain).
- ``errors`` and ``models``: the exception tree and the pydantic requests and responses.

This package ``__init__`` deliberately re-exports nothing, so importing ``emrops.emr.models``
(as ``emrops.api`` does) does not pull in aiohttp and the client.
"""
