"""Key-format helpers for tests: forge well-formed keys the server never issued."""
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksum(s: str) -> str:
    n = zlib.crc32(s.encode())
    out = ""
    for _ in range(6):
        out = ALPHABET[n % 62] + out
        n //= 62
    return out


def forge(prefix: str = "jes_live_") -> str:
    """A token with a valid checksum that no account owns."""
    body = prefix + "".join(secrets.choice(ALPHABET) for _ in range(30))
    return body + checksum(body)
