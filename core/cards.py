"""Card numbers: the one Luhn check, used by validation, masking and the demo source."""


def _luhn_sum(digits: str, *, double_odd: bool) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2 == double_odd:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total


def luhn_valid(digits: str) -> bool:
    """True when `digits` (digits only) end in their Luhn check digit."""
    return digits.isdigit() and _luhn_sum(digits, double_odd=True) % 10 == 0


def luhn_complete(partial: str) -> str:
    """`partial` plus its Luhn check digit."""
    return partial + str(-_luhn_sum(partial, double_odd=False) % 10)
