"""Record documents (the file sources' and the change API's shape) for tests."""

# A client with one account and one card, as the change API takes it.
DOC = {
    "client_id": 900001,
    "name": "Grace Hopper",
    "email": "grace@example.com",
    "segment": "private",
    "status": "active",
    "country": "US",
    "updated_at": "2026-11-25T09:00:00+00:00",
    "accounts": [
        {
            "account_number": "3000900001",
            "product": "current",
            "currency": "USD",
            "daily_limit_cents": 100000,
            "overdraft_enabled": False,
            "alerts_enabled": True,
            "statement_day": 1,
            "language": "en",
        }
    ],
    "cards": [
        {"card_id": 1, "card_number": "4111111111111111", "brand": "visa", "expiry": "01/30", "status": "active"}
    ],
}


def client_doc(client_id: int, name: str = "Ada Lovelace") -> dict:
    """A valid client with one Visa card (a Luhn-valid test number) and no accounts."""
    return {
        "client_id": client_id,
        "name": name,
        "email": None,
        "segment": "retail",
        "status": "active",
        "country": "GB",
        "updated_at": "2026-11-25T09:00:00+00:00",
        "accounts": [],
        "cards": [
            {
                "card_id": client_id,
                "card_number": "4111111111111111",
                "brand": "visa",
                "expiry": "01/30",
                "status": "active",
            }
        ],
    }
