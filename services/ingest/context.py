"""What ingest's routes reach: the shared adapters, the Kafka publisher and its counter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from prometheus_client import Counter

from services.common.context import AppContext, context_of
from services.common.kafka import KafkaPublisher
from services.ingest.batcher import IngestBatcher
from services.ingest.receipts_webhooks import ReceiptDeliverer


@dataclass(kw_only=True)
class IngestContext(AppContext):
    """The shared adapters plus the transactional publisher, the batcher of new reports and the
    accepted-incidents counter."""

    publisher: KafkaPublisher
    batcher: IngestBatcher  # new reports, group-committed
    accepted: Counter  # labelled by force code
    # posts forces' receipt changes; built by the lifespan, beside its HTTP client
    deliverer: ReceiptDeliverer | None = None


get_ingest_ctx = context_of(IngestContext)
IngestCtx = Annotated[IngestContext, Depends(get_ingest_ctx)]
