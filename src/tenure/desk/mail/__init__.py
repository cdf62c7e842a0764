"""The desk's mail: quotes out with signed Approve / Decline links, client mail in as notes and tickets."""
