"""The acknowledgement policy, in one place for every bus adapter."""

from __future__ import annotations

from hotline.errors import MalformedMessage, SealError
from hotline.logging import get_logger
from hotline.ports import Handler, Message, Outcome

__all__ = ["deliver"]

_log = get_logger("hotline.bus")


async def deliver(handler: Handler, message: Message) -> Outcome:
    """Run ``handler`` and say what the adapter must do with the delivery.

    Ack after the handler returned (its work is committed); reject to the parking queue
    when the message can never be processed (malformed, or sealed to a key we do not
    hold); otherwise ask for redelivery and let the broker count attempts. Cancellation
    propagates: the broker redelivers an unacknowledged message to the next consumer.
    """
    try:
        await handler(message)
    except (MalformedMessage, SealError) as exc:
        _log.warning("message.rejected", message_id=message.message_id,
                     routing_key=message.routing_key, error_type=type(exc).__name__,
                     field=getattr(exc, "field", None))
        return Outcome.REJECT
    except Exception as exc:  # any other failure is treated as transient
        _log.warning("message.retry", message_id=message.message_id,
                     routing_key=message.routing_key, error_type=type(exc).__name__,
                     delivery_count=message.delivery_count)
        return Outcome.RETRY
    return Outcome.ACK
