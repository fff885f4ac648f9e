"""The billing service's pure core: the credit ledger aggregate, the rate card, the billing mode."""
