"""The customer-facing side: public order view, QR codes, the cashier page."""
