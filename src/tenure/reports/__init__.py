"""The owner's view (DOMAIN.md "The owner's view"): profitability per client, agreement and month, and
the fit replay of the MSP's catalog on a client's real work."""
