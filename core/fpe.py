"""Format-preserving encryption: NIST SP 800-38G (rev. 1) FF1 over AES, and the digit formats
the record's numbers use (core.crypto holds the keys, core.records decides which field uses it).

FF1 is a 10-round Feistel network whose round function is AES-CBC-MAC over a block P
(radix, lengths) and a block string Q (the tweak, the round number, one half of the
input). Digits in, the same number of digits out; the tweak (here the field's binding:
record key, path and item identity, as AES-GCM's associated data) makes the same number
encrypt differently in every place. It is a permutation, not an AEAD: there is no tag,
so nothing tells a ciphertext from a number in clear, nor a changed digit from the
right one (what keeps the cache honest then is the producer's seal and the content
hash: docs/security.md).

The implementation follows the specification's steps with integers instead of numeral
strings; what stays the same for every round of one value (the CBC-MAC over P and the
tweak's whole blocks of Q) is computed once, so a round costs one AES block; and
`encrypt_many` runs the rounds of many values in step, one AES call per round (and per
tweak block) for all of them, on one reused AES context per thread.
tests/kafkacache/test_fpe.py checks it against every FF1 sample of the NIST examples
(AES-128/192/256, radix 10 and 36) both ways.

Domain: rev. 1 requires radix**minlen >= 1,000,000, so six digits at least are
encrypted; a shorter part raises FpeError.

Formats of a digit string (DigitFormat), named in the record beside the value so a
reader decrypts exactly as it was encrypted:
- "ff1": every digit encrypted.
- "ff1-last4": all but the last four, which stay in clear (the record carries them in
  clear anyway, card_last4 / account_last4); masks and joins on the last four keep working.
- "ff1-luhn", "ff1-luhn-last4": as above, and the output passes the Luhn check: one
  digit (the last one encrypted would have been, i.e. the check digit, or the digit
  just before the clear last four) is not encrypted but recomputed so the whole number
  is Luhn-valid. Decryption recomputes it the same way, which gives back the original
  only if the original was Luhn-valid: a number that is not is encrypted with the
  non-Luhn twin format instead (core.crypto chooses, and the format it names says so).
  The Luhn digit carries no information, so the domain is 10**(n - 1) (10**(n - 5)
  with the clear last four): 10**11 for a 16-digit card keeping its last four.
"""

import threading
from collections.abc import Sequence
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from core.cards import luhn_fix, luhn_valid

MIN_DOMAIN = 1_000_000  # SP 800-38G rev. 1, section 5.2: radix**minlen >= 10**6
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


class FpeError(ValueError):
    """Input FF1 cannot take (not numerals of the radix, a domain below the minimum)."""


class FF1:
    """FF1-AES with a key of 16, 24 or 32 bytes, for numerals of `radix` (2..36, as 0-9a-z)."""

    def __init__(self, key: bytes, radix: int = 10):
        if len(key) not in (16, 24, 32):
            raise FpeError(f"FF1 key must be 16, 24 or 32 bytes, got {len(key)}")
        if not 2 <= radix <= len(ALPHABET):
            raise FpeError(f"radix must be 2..{len(ALPHABET)}, got {radix}")
        self.radix = radix
        self._aes = algorithms.AES(key)
        self._local = threading.local()
        self.min_length = next(n for n in range(1, 64) if radix**n >= MIN_DOMAIN)

    def encrypt(self, text: str, tweak: bytes = b"") -> str:
        return self.encrypt_many([(text, tweak)])[0]

    def decrypt(self, text: str, tweak: bytes = b"") -> str:
        return self.decrypt_many([(text, tweak)])[0]

    def encrypt_many(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        """FF1.Encrypt of each (numerals, tweak), all rounds in step."""
        return self._run(items, decrypt=False)

    def decrypt_many(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        return self._run(items, decrypt=True)

    def _run(self, items: Sequence[tuple[str, bytes]], *, decrypt: bool) -> list[str]:
        if not items:
            return []
        radix = self.radix
        ecb = self._ecb()
        states = [self._state(text, tweak) for text, tweak in items]
        self._heads(ecb, states)
        rounds = range(9, -1, -1) if decrypt else range(10)
        for i in rounds:
            # Q's last block: the tweak's tail, the round number, NUM(B) (NUM(A) decrypting) in b
            # bytes, as one integer (the parts' bits do not overlap), XORed into the CBC-MAC state.
            blocks = b"".join((s.hq ^ (i << s.shift) ^ (s.a if decrypt else s.b)).to_bytes(16, "big") for s in states)
            macs = ecb.update(blocks)
            even = i % 2 == 0
            for k, s in enumerate(states):
                if s.d <= 16:
                    y = int.from_bytes(macs[16 * k : 16 * k + s.d], "big")
                else:
                    y = int.from_bytes(s.expand(ecb, macs[16 * k : 16 * k + 16]), "big")
                modulus = s.mu if even else s.mv
                if decrypt:
                    s.a, s.b = (s.b - y) % modulus, s.a
                else:
                    s.a, s.b = s.b, (s.a + y) % modulus
        return [_numerals(s.a, s.u, radix) + _numerals(s.b, s.v, radix) for s in states]

    def _state(self, text: str, tweak: bytes) -> "_Value":
        radix, n, t = self.radix, len(text), len(tweak)
        if n < self.min_length:
            raise FpeError(f"{n} numerals of radix {radix}: FF1 needs at least {self.min_length} (domain 10**6)")
        if n >= 2**32 or t >= 2**32:
            raise FpeError("input or tweak too long for FF1")
        try:
            if radix == 10 and text.isascii() and text.isdigit():
                whole = None
            else:
                whole = [ALPHABET.index(c) for c in text.lower()]
                if any(d >= radix for d in whole):
                    raise ValueError
        except ValueError:
            raise FpeError(f"not numerals of radix {radix}") from None
        u = n // 2
        v = n - u
        if whole is None:
            a, b = int(text[:u]), int(text[u:])
        else:
            a, b = _number(whole[:u], radix), _number(whole[u:], radix)
        b_bytes = ((radix**v - 1).bit_length() + 7) // 8  # ceil(ceil(v * log2(radix)) / 8)
        d = 4 * ((b_bytes + 3) // 4) + 4
        p = bytes((1, 2, 1)) + radix.to_bytes(3, "big") + bytes((10, u % 256)) + n.to_bytes(4, "big")
        p += t.to_bytes(4, "big")
        fixed = tweak + bytes((-t - b_bytes - 1) % 16)
        if b_bytes > 15:  # NUM(B) spills over a block: no fixed prefix of the last block
            raise FpeError(f"{n} numerals of radix {radix}: longer than this implementation takes")
        head_len = len(fixed) + 1 + b_bytes - 16  # Q's blocks before its last one
        head, q_tail = fixed[:head_len], fixed[head_len:]
        return _Value(a, b, u, v, b_bytes, d, p + head, q_tail, radix)

    def _heads(self, ecb, states: Sequence["_Value"]) -> None:
        """The CBC-MAC state after P and Q's whole tweak blocks, the same for all ten rounds of a
        value: block by block, one AES call for every value at once (one call each costs ~1 us
        more than a block, and a cipher context ~20 us)."""
        macs = [0] * len(states)
        for start in range(0, max(len(s.head) for s in states), 16):
            live = [k for k, s in enumerate(states) if len(s.head) > start]
            blocks = b"".join(
                (macs[k] ^ int.from_bytes(states[k].head[start : start + 16], "big")).to_bytes(16, "big") for k in live
            )
            out = ecb.update(blocks)
            for n, k in enumerate(live):
                macs[k] = int.from_bytes(out[16 * n : 16 * n + 16], "big")
        for s, mac in zip(states, macs, strict=True):
            s.hq = mac ^ (int.from_bytes(s.q_tail, "big") << (8 * (1 + s.b_bytes)))

    def _ecb(self):
        """This thread's AES-ECB context (a context is not safe to share between threads)."""
        ecb = getattr(self._local, "ecb", None)
        if ecb is None:
            ecb = self._local.ecb = Cipher(self._aes, modes.ECB()).encryptor()  # noqa: S305  (the PRF's blocks)
        return ecb


class _Value:
    """One value's state through the rounds (mutable halves, the precomputed CBC-MAC `h` of
    `head`: P and the whole blocks of Q before its last, with the tweak's tail: `hq`)."""

    __slots__ = ("a", "b", "b_bytes", "d", "head", "hq", "mu", "mv", "q_tail", "shift", "u", "v")

    def __init__(self, a: int, b: int, u: int, v: int, b_bytes: int, d: int, head: bytes, q_tail: bytes, radix: int):
        self.a, self.b, self.u, self.v = a, b, u, v
        self.b_bytes, self.d, self.head, self.q_tail = b_bytes, d, head, q_tail
        self.mu, self.mv = radix**u, radix**v
        self.shift = 8 * b_bytes  # where the round number sits in Q's last block
        self.hq = 0  # the CBC-MAC state with the tweak's tail in place (_heads)

    def expand(self, ecb, r: bytes) -> bytes:
        """S: the first d bytes of R || CIPH(R xor [1]) || CIPH(R xor [2]) ..."""
        if self.d <= 16:
            return r[: self.d]
        rn = int.from_bytes(r, "big")
        extra = b"".join((rn ^ j).to_bytes(16, "big") for j in range(1, (self.d + 15) // 16))
        return (r + ecb.update(extra))[: self.d]


def _number(numerals: Sequence[int], radix: int) -> int:
    out = 0
    for d in numerals:
        out = out * radix + d
    return out


def _numerals(value: int, length: int, radix: int) -> str:
    if radix == 10:
        return str(value).zfill(length)
    out = []
    for _ in range(length):
        value, d = divmod(value, radix)
        out.append(ALPHABET[d])
    return "".join(reversed(out))


class DigitFormat(NamedTuple):
    """How a digit string is encrypted: which part, whether its output passes the Luhn check."""

    name: str
    clear_tail: int  # digits kept in clear at the end (0 or 4)
    luhn: bool

    def encrypted_length(self, digits: int) -> int:
        return digits - self.clear_tail - (1 if self.luhn else 0)

    @property
    def plain_twin(self) -> "DigitFormat":
        """The same without the Luhn output (for a number that does not pass the check itself)."""
        return FORMATS[self.name.replace("-luhn", "")]


FORMATS = {
    f.name: f
    for f in (
        DigitFormat("ff1", 0, False),
        DigitFormat("ff1-last4", 4, False),
        DigitFormat("ff1-luhn", 0, True),
        DigitFormat("ff1-luhn-last4", 4, True),
    )
}


def digit_format(name: str) -> DigitFormat:
    found = FORMATS.get(name)
    if found is None:
        raise FpeError(f"unknown format-preserving format {name!r}: one of {', '.join(FORMATS)}")
    return found


def format_for(wanted: DigitFormat, digits: str) -> DigitFormat:
    """The format a number is encrypted with: `wanted`, or its non-Luhn twin when the number
    itself fails the Luhn check (a Luhn output could not be decrypted back to it)."""
    return wanted.plain_twin if wanted.luhn and not luhn_valid(digits) else wanted


def split(fmt: DigitFormat, digits: str, where: str) -> tuple[str, str]:
    """(the part FF1 takes, the clear tail) of a number in `fmt`; FpeError below the domain."""
    m = fmt.encrypted_length(len(digits))
    if m < 6 or not digits.isascii() or not digits.isdigit():
        raise FpeError(
            f"{where}: {max(m, 0)} digits to encrypt in format {fmt.name}: FF1 needs 6 at least (domain 10**6)"
            if digits.isdigit()
            else f"{where}: expected digits"
        )
    return digits[:m], digits[len(digits) - fmt.clear_tail :] if fmt.clear_tail else ""


def join(fmt: DigitFormat, body: str, tail: str) -> str:
    """The number from its FF1 part and clear tail, with its Luhn digit made when `fmt` has one."""
    if not fmt.luhn:
        return body + tail
    return luhn_fix(body + "0" + tail, len(body))
