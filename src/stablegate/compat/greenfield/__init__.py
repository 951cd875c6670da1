"""A subset of BTCPay Server's Greenfield API (``/api/v1/…``) over the order, rate and webhook
services, for shop plugins written against it (the BTCPay WooCommerce plugin and the
``btcpayserver-greenfield-php`` client it uses), authenticated by the merchant's ``greenfield``
credential: ``Authorization: token <key>`` (docs/INTEGRATIONS.md). One merchant is one store."""
