"""EPay (彩虹易支付: ``submit.php``, ``mapi.php``, ``api.php``) and Epusdt
(``create-transaction``) over the order, rate and webhook services, authenticated by the
merchant's ``epay`` credential: a numeric pid and an MD5 key (docs/INTEGRATIONS.md)."""
