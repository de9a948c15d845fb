from celery import shared_task

from monitoring import services
from monitoring.webhooks import DeliveryError


@shared_task(ignore_result=True)
def alerts_evaluate() -> int:
    notifications = services.alerts_evaluate()
    for notification in notifications:
        notification_send.delay(notification.pk)
    return len(notifications)


@shared_task(bind=True, ignore_result=True, max_retries=services.MAX_ATTEMPTS - 1)
def notification_send(self, notification_id: int) -> None:
    try:
        services.notification_deliver(notification_id=notification_id)
    except DeliveryError as exc:
        # Exponential backoff: 5 s, 10 s, 20 s, 40 s.
        raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc


@shared_task(name="monitoring.tasks.lag_sample", ignore_result=True)
def lag_sample() -> int:
    """Beat: the offset samples the lag status is judged from."""
    return services.lag_sample()
