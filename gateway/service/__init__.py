"""Use cases: apply commands and inbound items to the store through the allocation rules."""
