"""The MSP itself: its business settings (rates, rounding, terms, bonus table, catalog)."""
