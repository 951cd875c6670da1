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
    },
}

MESSAGES: dict[str, dict[str, str]] = {
    language: {**DASHBOARD_MESSAGES[language], **INTEGRATION_MESSAGES[language]}
    for language in DASHBOARD_MESSAGES
}


def translator(language: str) -> Translator:
    return Translator(MESSAGES, language, DEFAULT_LANGUAGE)
