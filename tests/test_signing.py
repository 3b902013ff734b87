"""Signing: every test vector of PROTOCOL.md §3, key loading, and secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from services.signing import (
    Ed25519Signer,
    HmacSigner,
    KeyFileError,
    RsaSigner,
    load_private_key,
    load_private_key_file,
    signing_text,
    verify,
    verify_hmac,
)
from tests.helpers import DOC_KEY, DOC_SECRET, pem

ED25519_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
"""


def test_spot_docs_hmac_vector() -> None:
    params: dict[str, str | int | bool] = {
        "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01000000",
        "price": "52000.00", "recvWindow": 100, "timestamp": 1645423376532, "apiKey": DOC_KEY,
    }  # fmt: skip
    text = signing_text(params)
    assert text == (
        f"apiKey={DOC_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT"
        "&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert HmacSigner(DOC_SECRET).sign(text) == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_balance_call_vectors() -> None:
    with_window: dict[str, str | int | bool] = {"timestamp": 1702561978458, "recvWindow": 5000, "apiKey": DOC_KEY}
    assert signing_text(with_window) == f"apiKey={DOC_KEY}&recvWindow=5000&timestamp=1702561978458"
    assert (
        HmacSigner(DOC_SECRET).sign(signing_text(with_window))
        == "793beda4efb93e44049d807438014da4594dfd10df1ab23c3365d937c7df12aa"
    )
    without: dict[str, str | int | bool] = {"timestamp": 1702561978458, "apiKey": DOC_KEY}
    assert (
        HmacSigner(DOC_SECRET).sign(signing_text(without))
        == "caf71ea674bd6a2617dc5dc1e1366b5c09e4f7bbdf183ddb61d341047a0443cd"
    )


def test_ed25519_vector_from_the_rfc_test_key() -> None:
    signer = load_private_key(ED25519_PEM)
    assert isinstance(signer, Ed25519Signer)
    text = f"apiKey={DOC_KEY}&recvWindow=5000&timestamp=1702561978458"
    assert signer.sign(text) == (
        "ft1LTUWAuKzjZ6FVohPMLdOabbjUjUswZHWbnQECgBRY3Cs7wy06K/jWgYo28C/NNhNaqmRKM0lL9osXmcCrCQ=="
    )
    assert verify(signer.public_key(), text, signer.sign(text))
    assert not verify(signer.public_key(), text + "&x=1", signer.sign(text))


def test_signature_param_is_left_out_and_booleans_are_lowercase() -> None:
    assert signing_text({"b": True, "a": False, "signature": "zzz", "n": 5}) == "a=false&b=true&n=5"


def test_rsa_signs_pkcs1v15_sha256(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = load_private_key(pem(rsa_key))
    assert isinstance(signer, RsaSigner)
    signature = signer.sign("apiKey=k&timestamp=1")
    assert verify(rsa_key.public_key(), "apiKey=k&timestamp=1", signature)
    assert not verify(rsa_key.public_key(), "apiKey=k&timestamp=2", signature)


def test_hmac_verification_is_exact() -> None:
    signature = HmacSigner("s").sign("a=1")
    assert verify_hmac("s", "a=1", signature)
    assert not verify_hmac("s", "a=2", signature)
    assert not verify_hmac("t", "a=1", signature)


def test_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(pem(key, passphrase="open sesame"))
    path.chmod(0o600)  # a private key others can read is refused, as ssh does
    signer = load_private_key_file(path, "open sesame")
    assert verify(key.public_key(), "x", signer.sign("x"))
    with pytest.raises(KeyFileError, match="encrypted: give its passphrase"):
        load_private_key_file(path)
    with pytest.raises(KeyFileError, match="passphrase is wrong") as wrong:
        load_private_key_file(path, "not it")
    assert "not it" not in str(wrong.value)


def test_key_file_errors_say_what_is_wrong_without_quoting_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read private key file"):
        load_private_key_file(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError) as info:
        load_private_key_file(garbage)
    assert "SECRETSTUFF" not in str(info.value)


def test_reprs_hide_key_material() -> None:
    assert DOC_SECRET not in repr(HmacSigner(DOC_SECRET))
    assert "**" in repr(load_private_key(ED25519_PEM))
