"""The Integrations page's messages in English and Simplified Chinese, over the dashboard's."""

from __future__ import annotations

from stablegate.cashier.i18n import DEFAULT_LANGUAGE
from stablegate.dashboard.i18n import MESSAGES as DASHBOARD_MESSAGES
from stablegate.web.i18n import Translator

INTEGRATION_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "integrations_title": "Integrations",
        "integrations_intro": "Shop software that already speaks EPay or Epusdt (card shops, "
        "panels such as SSPanel or dujiaoka) can take payments here by changing an address and "
        "a key in its payment settings.",
        "integrations_weaker": "These plugins sign with MD5 and a shared key, which is weaker "
        "than the API keys' signatures: such a credential can only create orders paid to your "
        "own payout address and read them, and it works nowhere else.",
        "integrations_addresses": "Addresses to enter in the plugin",
        "integrations_epay_url": "EPay API address",
        "integrations_epusdt_url": "Epusdt API address",
        "integrations_pid_placeholder": "<pid>",
        "integrations_yours": "Your EPay / Epusdt credentials",
        "integrations_none": "None yet.",
        "integrations_col_pid": "Merchant id (pid)",
        "integrations_col_pays": "Paid in",
        "integrations_col_priced": "Priced in",
        "integrations_col_state": "State",
        "integrations_revoke_hint": "Revoke a credential on the API keys page.",
        "integrations_new": "New EPay / Epusdt credential",
        "integrations_no_payout": "Set a payout address first (Settings): a credential's orders "
        "are paid to it.",
        "integrations_field_chain": "Chain the customer pays on",
        "integrations_field_symbol": "Token",
        "integrations_field_currency": "Currency the shop prices in",
        "integrations_field_label": "Label (optional)",
        "integrations_create": "Create credential",
        "integrations_created_title": "Your new EPay / Epusdt credential",
        "integrations_created_warning": "Copy the key now: it is not shown again. Anyone with "
        "it can create orders in your name.",
        "integrations_key": "Key (EPay key, Epusdt API token)",
        "integrations_back": "Back to Integrations",
        "nav_integrations": "Integrations",
        "key_active": "Active",
        "key_revoked": "Revoked",
        "error_unsupported_token": "That token is not accepted on that chain.",
        "error_unsupported_currency": "Orders in that token cannot be priced in that currency.",
        "error_payout_address_missing": "Set a payout address on that chain first (Settings).",
        "error_invalid_request": "Choose one of your payout chains.",
        "integrations_btcpay": "Shops with a BTCPay Server plugin",
        "integrations_btcpay_text": "WooCommerce and other shops with a BTCPay Server plugin: "
        "enter this address as the BTCPay Server URL and press the plugin's button to generate "
        "an API key; you approve it here.",
        "integrations_btcpay_url": "BTCPay Server URL",
        "integrations_btcpay_manual": "Make a key by hand (for a plugin without that button)",
        "gf_authorize_title": "Connect a shop",
        "gf_authorize_asks": "{app} asks to connect to your store {store} with these permissions.",
        "gf_authorize_asks_unnamed": "An application asks to connect to your store {store} with "
        "these permissions.",
        "gf_authorize_granted": "It will be able to",
        "gf_permission_btcpay_store_canviewinvoices": "see your invoices",
        "gf_permission_btcpay_store_cancreateinvoice": "create invoices",
        "gf_permission_btcpay_store_canmodifyinvoices": "mark invoices settled or invalid",
        "gf_permission_btcpay_store_webhooks_canmodifywebhooks": "set up its webhooks",
        "gf_permission_btcpay_store_canviewstoresettings": "see your store's settings",
        "gf_authorize_not_granted": "Asked for, not available on this gateway",
        "gf_authorize_not_granted_hint": "These are left out; the shop works without them.",
        "gf_authorize_destination": "The new key will be sent to {origin}. Approve only if this"
        " is your shop.",
        "gf_authorize_shown": "The new key will be shown on the next page, once.",
        "gf_field_chain": "Chain invoices are paid on by default",
        "gf_field_currency": "Your store's default currency",
        "gf_authorize_approve": "Approve",
        "gf_authorize_deny": "Deny",
        "gf_authorized_title": "Shop connected",
        "gf_authorized_sending": "Sending the key to {origin}…",
        "gf_authorized_continue": "Continue to {origin}",
        "gf_authorized_copy_now": "Copy the key now: it is not shown again.",
        "gf_key": "API key",
        "gf_store_id": "Store id",
        "gf_server_url": "Server URL",
        "gf_authorize_refused_title": "This connection request cannot be approved",
        "error_invalid_authorization": "The shop's request names another store, asks for nothing t"
        "his gateway grants, or is malformed.",
        "error_invalid_redirect": "The shop's return address is not an https URL.",
    },
    "zh-CN": {
        "integrations_title": "插件对接",
        "integrations_intro": "已支持 EPay 或 Epusdt 的商城软件（发卡网、SSPanel、独角数"
        "卡等面板）只需在"
        "支付设置中更换地址和密钥，即可在此收款。",
        "integrations_weaker": "这些插件使用 MD5 和共享密钥签名，安全性弱于 API 密钥的签名"
        "：此类凭证只能"
        "创建付款到您自己收款地址的订单并查询它们，别处一概无效。",
        "integrations_addresses": "在插件中填写的地址",
        "integrations_epay_url": "EPay 接口地址",
        "integrations_epusdt_url": "Epusdt 接口地址",
        "integrations_pid_placeholder": "<pid>",
        "integrations_yours": "您的 EPay / Epusdt 凭证",
        "integrations_none": "暂无。",
        "integrations_col_pid": "商户号（pid）",
        "integrations_col_pays": "支付币种",
        "integrations_col_priced": "计价货币",
        "integrations_col_state": "状态",
        "integrations_revoke_hint": "在 API 密钥页面撤销凭证。",
        "integrations_new": "新建 EPay / Epusdt 凭证",
        "integrations_no_payout": "请先设置收款地址（设置页）：凭证的订单将付款到该地址。",
        "integrations_field_chain": "顾客付款所用的链",
        "integrations_field_symbol": "代币",
        "integrations_field_currency": "商城的计价货币",
        "integrations_field_label": "备注（可选）",
        "integrations_create": "创建凭证",
        "integrations_created_title": "您的新 EPay / Epusdt 凭证",
        "integrations_created_warning": "请立即复制密钥：它不会再次显示。持有它的人可以以您的名义创"
        "建订单。",
        "integrations_key": "密钥（EPay 密钥、Epusdt API Token）",
        "integrations_back": "返回插件对接",
        "nav_integrations": "插件对接",
        "key_active": "有效",
        "key_revoked": "已撤销",
        "error_unsupported_token": "该链不接受此代币。",
        "error_unsupported_currency": "此代币的订单不能以该货币计价。",
        "error_payout_address_missing": "请先在该链上设置收款地址（设置页）。",
        "error_invalid_request": "请选择您设置了收款地址的链。",
        "integrations_btcpay": "使用 BTCPay Server 插件的商城",
        "integrations_btcpay_text": "WooCommerce 等装有 BTCPay Server 插件的商城："
        "将此地址填为 BTCPay Server URL，然后点击插件中生成 API 密钥的按钮，"
        "在此页面批准即可。",
        "integrations_btcpay_url": "BTCPay Server 地址",
        "integrations_btcpay_manual": "手动生成密钥（插件没有该按钮时）",
        "gf_authorize_title": "连接商城",
        "gf_authorize_asks": "{app} 请求以下列权限连接您的商店 {store}。",
        "gf_authorize_asks_unnamed": "一个应用请求以下列权限连接您的商店 {store}。",
        "gf_authorize_granted": "它将可以",
        "gf_permission_btcpay_store_canviewinvoices": "查看您的账单",
        "gf_permission_btcpay_store_cancreateinvoice": "创建账单",
        "gf_permission_btcpay_store_canmodifyinvoices": "将账单标记为已结清或无效",
        "gf_permission_btcpay_store_webhooks_canmodifywebhooks": "设置它的 Webhook",
        "gf_permission_btcpay_store_canviewstoresettings": "查看您商店的设置",
        "gf_authorize_not_granted": "请求了但本网关不提供的权限",
        "gf_authorize_not_granted_hint": "这些权限不会授予；商城没有它们也能工作。",
        "gf_authorize_destination": "新密钥将发送到 {origin}。请仅在这是您的商城时批准。",
        "gf_authorize_shown": "新密钥将在下一页显示，仅此一次。",
        "gf_field_chain": "账单默认付款所用的链",
        "gf_field_currency": "商店的默认货币",
        "gf_authorize_approve": "批准",
        "gf_authorize_deny": "拒绝",
        "gf_authorized_title": "商城已连接",
        "gf_authorized_sending": "正在将密钥发送到 {origin}…",
        "gf_authorized_continue": "继续前往 {origin}",
        "gf_authorized_copy_now": "请立即复制密钥：它不会再次显示。",
        "gf_key": "API 密钥",
        "gf_store_id": "商店 ID",
        "gf_server_url": "服务器地址",
        "gf_authorize_refused_title": "无法批准此连接请求",
        "error_invalid_authorization": "商城的请求指向了其他商店、没有请求本网关提供的任何权限，或"
        "格式错误。",
        "error_invalid_redirect": "商城的返回地址不是 https 网址。",
    },
}

MESSAGES: dict[str, dict[str, str]] = {
    language: {**DASHBOARD_MESSAGES[language], **INTEGRATION_MESSAGES[language]}
    for language in DASHBOARD_MESSAGES
}


def translator(language: str) -> Translator:
    return Translator(MESSAGES, language, DEFAULT_LANGUAGE)
