"""The fee split keeps every rupiah: fee + payable = gross, fee rounded half up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qris_soundbox.core.payments.fees import split_gross


@given(gross=st.integers(min_value=0, max_value=10**13), bps=st.integers(min_value=0, max_value=10_000))
def test_fee_and_payable_add_up_to_gross(gross: int, bps: int) -> None:
    split = split_gross(gross, bps)
    assert split.fee + split.payable == gross
    assert 0 <= split.fee <= gross
    # Within half a rupiah of the exact fee (half up).
    assert abs(split.fee * 10_000 - gross * bps) <= 5_000


def test_rounding_examples() -> None:
    assert split_gross(25_000, 70).fee == 175
    assert split_gross(1_000, 70).fee == 7
    assert split_gross(1_500, 70).fee == 11  # 10.5 rounds half up
    assert split_gross(1_499, 70).fee == 10  # 10.493
    assert split_gross(10_000, 0).fee == 0 and split_gross(10_000, 10_000).payable == 0
