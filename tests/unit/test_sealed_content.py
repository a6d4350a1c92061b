"""Sealed content read in pieces, opened without a decoded copy, withheld from lists (issue 7)."""

# STYLE.md: asserts read `assert expected == actual`, which SIM300 calls a Yoda condition.

from __future__ import annotations

import copy
import pickle

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hotline.crypto import Sealed, b64e, open_sealed, seal
from hotline.errors import ContentNotLoaded

pytestmark = pytest.mark.unit

PRIVATE = X25519PrivateKey.generate()
PLAINTEXT = bytes(range(256)) * 1000  # several pieces


def _forms() -> dict[str, Sealed]:
    """One sealed value in each of its forms: as sealed here, from the wire, from bytes."""
    sealed = seal(PLAINTEXT, PRIVATE.public_key(), kid="k1", purpose="report")
    wire = {"kid": "k1", "enc": b64e(sealed.enc), "ciphertext": b64e(sealed.ciphertext)}
    return {"sealed": seal(PLAINTEXT, PRIVATE.public_key(), kid="k1", purpose="report"),
            "wire": Sealed.from_wire(wire),
            "bytes": Sealed("k1", sealed.enc, sealed.ciphertext)}


@pytest.mark.parametrize("form", ["sealed", "wire", "bytes"])
def test_ciphertext_pieces_join_up_to_the_ciphertext(form: str) -> None:
    """ciphertext_pieces gives the ciphertext in bounded pieces, whatever the form."""
    sealed = _forms()[form]
    pieces = [bytes(p) for p in sealed.ciphertext_pieces()]
    assert len(pieces) > 1
    assert max(len(p) for p in pieces) <= 48 * 1024
    assert sealed.ciphertext == b"".join(pieces)
    assert sealed.ciphertext_size == len(sealed.ciphertext)


@pytest.mark.parametrize("form", ["sealed", "wire", "bytes"])
def test_open_sealed_opens_every_form(form: str) -> None:
    """A large value opens the same from the wire, from bytes and as sealed here."""
    assert PLAINTEXT == open_sealed(_forms()[form], PRIVATE, purpose="report")


def test_a_withheld_value_has_key_id_and_enc_but_no_ciphertext() -> None:
    """Sealed.withheld keeps kid and enc; its ciphertext, pieces and opening raise
    ContentNotLoaded; it equals only a withheld value with the same kid and enc, and
    survives copy and pickle."""
    whole = _forms()["bytes"]
    withheld = Sealed.withheld(whole.kid, whole.enc)
    assert (whole.kid, whole.enc, True, False) == (withheld.kid, withheld.enc,
                                                   withheld.is_withheld, whole.is_withheld)
    for read in (lambda: withheld.ciphertext, lambda: list(withheld.ciphertext_pieces()),
                 lambda: open_sealed(withheld, PRIVATE, purpose="report")):
        with pytest.raises(ContentNotLoaded):
            read()
    assert withheld == Sealed.withheld(whole.kid, whole.enc)
    assert withheld != whole
    assert whole != withheld
    assert withheld != Sealed.withheld("k2", whole.enc)
    assert hash(withheld) == hash(Sealed.withheld(whole.kid, whole.enc))
    assert withheld == copy.deepcopy(withheld)
    assert withheld == pickle.loads(pickle.dumps(withheld))
    assert "<withheld>" in repr(withheld)
