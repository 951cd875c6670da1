"""Payments: record, finalise and orphan transfers, and settle their orders by the state table."""
