"""Record documents (the file sources' and the change API's shape) for tests."""


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
