"""NVCF assets: an input too large to send inline is uploaded, referenced, then deleted.

Creating and deleting an asset are requests to the service (budgeted and counted); the upload
itself goes to a presigned storage URL without our key (counted, not budgeted).
"""

from __future__ import annotations

import logging

import httpx

from clients.generation.http import RequestCount, ServiceConnection
from domain.errors import TransientServiceError

DESCRIPTION = "storyboard-svd-input"

logger = logging.getLogger(__name__)


def upload_asset(
    connection: ServiceConnection, data: bytes, content_type: str, calls: RequestCount
) -> str:
    """Upload `data` as an NVCF asset (retried like a request); returns its id."""
    policy = connection.options.retry
    for attempt in range(1, policy.attempts + 1):
        try:
            return _upload_once(connection, data, content_type, calls)
        except httpx.TransportError as exc:
            error = TransientServiceError(f"asset upload failed ({type(exc).__name__})")
        except TransientServiceError as exc:
            error = exc
        if attempt == policy.attempts:
            raise error
        connection.sleep(policy.delay(attempt, error.retry_after_s))
    raise TransientServiceError("asset upload failed")


def _upload_once(
    connection: ServiceConnection, data: bytes, content_type: str, calls: RequestCount
) -> str:
    created = connection.send(
        calls,
        "POST",
        f"{connection.options.nvcf_base}/assets",
        json={"contentType": content_type, "description": DESCRIPTION},
        headers=connection.auth(),
    )
    answer = connection.final_body(created, "")
    asset_id, upload_url = answer.get("assetId"), answer.get("uploadUrl")
    if not isinstance(asset_id, str) or not isinstance(upload_url, str):
        raise TransientServiceError("the asset answer had no assetId or uploadUrl")
    uploaded = connection.send(
        calls,
        "PUT",
        upload_url,
        budgeted=False,
        content=data,
        headers={"Content-Type": content_type, "x-amz-meta-nvcf-asset-description": DESCRIPTION},
    )
    if uploaded.status_code >= 300:
        raise TransientServiceError(f"asset upload answered HTTP {uploaded.status_code}")
    return asset_id


def delete_asset(connection: ServiceConnection, asset_id: str, calls: RequestCount) -> None:
    """Delete an asset once its job is done; a failure is logged, not raised (NVCF expires
    assets after 24 h anyway)."""
    url = f"{connection.options.nvcf_base}/assets/{asset_id}"
    try:
        response = connection.send(calls, "DELETE", url, headers=connection.auth())
    except httpx.TransportError as exc:
        logger.info("asset %s not deleted (%s); it expires in 24 h", asset_id, type(exc).__name__)
        return
    if response.status_code >= 300:
        logger.info("asset %s not deleted (HTTP %d)", asset_id, response.status_code)
