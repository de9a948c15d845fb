"""Card and account numbers are masked wherever they hide."""

from core.masking import luhn_valid, mask_number, mask_sensitive, mask_text


def test_mask_number_keeps_separators_and_last_four():
    assert mask_number("4111 1111 1111 1234") == "•••• •••• •••• 1234"
    assert mask_number("123") == "123"


def test_luhn():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_free_text_masks_card_numbers_only():
    text = "card 4111-1111-1111-1111 at 1732531200000 offset 123456789"
    assert mask_text(text) == "card ••••-••••-••••-1111 at 1732531200000 offset 123456789"


def test_sensitive_fields_nested():
    record = {
        "name": "ACME 42",
        "company": "Span Ltd",
        "accountId": 123456789012,
        "cards": [{"number": "5500005555555559", "type": "visa", "cvv": "123"}],
        "settings": {"iban": "DE89370400440532013000", "limit": 5000},
    }
    masked = mask_sensitive(record)
    assert masked["name"] == "ACME 42" and masked["company"] == "Span Ltd"
    assert masked["accountId"] == "••••••••9012"
    assert masked["cards"][0] == {"number": "••••••••••••5559", "type": "visa", "cvv": "•••"}
    assert masked["settings"] == {"iban": "DE••••••••••••••••3000", "limit": 5000}
    assert record["cards"][0]["number"] == "5500005555555559"  # the input is not touched
