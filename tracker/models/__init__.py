"""SQLModel tables, one module per aggregate. Importing this package registers them all."""

from tracker.models.alert import Alert, Notification
from tracker.models.declaration import Declaration, DeclarationLine
from tracker.models.seller import ApiKey, AuditLog, IdempotencyRecord, Seller, SellerKind
from tracker.models.shipment import Order, PollSchedule, Shipment, TrackingEvent
from tracker.models.types import UTCDateTime, new_id
from tracker.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

__all__ = [
    "Alert",
    "ApiKey",
    "AuditLog",
    "Declaration",
    "DeclarationLine",
    "IdempotencyRecord",
    "Notification",
    "Order",
    "PollSchedule",
    "Seller",
    "SellerKind",
    "Shipment",
    "TrackingEvent",
    "UTCDateTime",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "new_id",
]
