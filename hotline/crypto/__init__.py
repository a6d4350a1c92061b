"""Sealing (HPKE, CONTRACT §6), key custody, receipts, proof of work and tokens."""

from hotline.crypto._keys import KeyRecord, KeyRing, MasterKey, new_key_record
from hotline.crypto._pow import PowIssuer, PowProblem, solve_pow
from hotline.crypto._receipts import (
    ReceiptKeys,
    generate_receipt,
    new_receipt,
    normalise_receipt,
    receipt_reply_private_key,
    receipt_reply_public_key,
)
from hotline.crypto._sealing import (
    SUITE_NAME,
    Sealed,
    b64d,
    b64e,
    open_sealed,
    seal,
)
from hotline.crypto._tokens import TokenSigner

__all__ = [
    "SUITE_NAME",
    "KeyRecord",
    "KeyRing",
    "MasterKey",
    "PowIssuer",
    "PowProblem",
    "ReceiptKeys",
    "Sealed",
    "TokenSigner",
    "b64d",
    "b64e",
    "generate_receipt",
    "new_key_record",
    "new_receipt",
    "normalise_receipt",
    "open_sealed",
    "receipt_reply_private_key",
    "receipt_reply_public_key",
    "seal",
    "solve_pow",
]
