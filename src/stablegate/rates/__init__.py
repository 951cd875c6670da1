"""Prices in the shop's currency: source adapters, rules, the background fetcher and pricing.

Each source (``rates/sources/``) turns one provider's answer into ``Quote`` values; the fetcher
stores them (latest and history); the engine combines the stored quotes of a pair under its
rule into the one rate an order is priced at. Nothing on the order path calls out.
"""
