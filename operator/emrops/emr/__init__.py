"""The EMR OpenAPI client: typed requests, ACS3 signing, httpx calls, errors, credentials.

Knows nothing of Kubernetes: the controller passes it plain requests and credentials.

- ``client``: ``EmrClient``, one typed async method per action, pagination iterators.
- ``wire``: builds one signed request exactly as the official SDK sends it.
- ``responses``: the one function turning an HTTP response into a result or an ``ApiError``.
- ``httpx_errors``: the one place httpx exceptions become ``RequestNotSentError`` / ``OutcomeUnknownError``.
- ``endpoints``: which host serves a region (public, VPC, or an override).
- ``credentials``: ``StaticCredentials``, ``DefaultChainCredentials`` (Alibaba's default chain).
- ``errors`` and ``models``: the exception tree and the pydantic requests and responses.

This package ``__init__`` deliberately re-exports nothing, so importing ``emrops.emr.models``
(as ``emrops.api`` does) does not pull in httpx and the client.
"""
