"""Card numbers: the one Luhn check, used by validation, masking, the demo source and the
Luhn-valid format-preserving encryption (core.fpe)."""


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


def luhn_fix(digits: str, position: int) -> str:
    """`digits` with the digit at `position` (from the left) replaced by the one digit that makes
    the whole number pass the Luhn check (every digit 0-9 at one place gives a different sum mod 10)."""
    rest = digits[:position] + "0" + digits[position + 1 :]
    need = -_luhn_sum(rest, double_odd=True) % 10
    doubled = (len(digits) - 1 - position) % 2 == 1
    digit = next(d for d in range(10) if ((d * 2 - 9 if d > 4 else d * 2) if doubled else d) == need)
    return digits[:position] + str(digit) + digits[position + 1 :]
