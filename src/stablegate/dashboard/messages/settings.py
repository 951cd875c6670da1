"""The Settings page (settings_pages.py): the payout address, payment rules and the cashier's
branding."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "settings_title": "Settings",
        "settings_intro": "Where your payments go and what your customers see.",
        "settings_saved_payout": "The payout address is saved. New orders pay out to it.",
        "settings_saved_payments": "The payment rules are saved.",
        "settings_saved_cashier": "The checkout page details are saved.",
        "settings_save": "Save",
        "settings_payout_title": "Payout addresses",
        "settings_payout_intro": "Every payment goes to your own wallet on each chain: the "
        "gateway never holds your funds. Use an address you control on that chain; an exchange "
        "deposit address may not credit contract transfers.",
        "settings_payout_label": "{chain} (chain {chain_id})",
        "settings_payout_current": "Orders on this chain pay out here.",
        "settings_payout_none": "No address yet: orders on this chain are refused until you set "
        "one.",
        "settings_payout_confirm_mixed": "I checked: this address is my wallet on this chain too.",
        "settings_no_chains": "The gateway has no chains configured. Ask its operator.",
        "settings_payments_title": "Payment rules",
        "settings_late_label": "A payment that arrives after the order expired",
        "settings_late_record": "Record it; the order stays expired",
        "settings_late_complete": "Complete the order if it pays in full",
        "settings_late_hint": "Either way, you are told by a webhook and the payment is in the "
        "order.",
        "settings_tolerance_label": "Underpayment tolerance",
        "settings_tolerance_hint": "An order paid this much short still completes (0 to below 10 "
        "%, up to 4 decimals). 0 means exact.",
        "settings_strategy_label": "Deposit address for new orders",
        "settings_strategy_forwarder": "A new deposit address per order (recommended)",
        "settings_strategy_unique_amount": "Your payout wallet, told apart by a unique amount",
        "settings_strategy_hint": "Per-order addresses are swept to your wallet by the gateway, "
        "which pays the gas. A unique amount needs no sweep but adds a few base units to each "
        "order.",
        "settings_cashier_title": "Checkout page",
        "settings_cashier_intro": "What your customers see on the page where they pay.",
        "settings_display_name": "Display name",
        "settings_display_name_hint": "Empty: your account name, {name}.",
        "settings_logo_url": "Logo URL",
        "settings_logo_hint": "An https address of an image, at most 512 characters. Empty: no "
        "logo.",
        "settings_support_contact": "Support contact",
        "settings_support_hint": "An email address, web page or short text where customers ask "
        "for help.",
        "settings_error_display_name": "The display name is at most 80 characters, without line "
        "breaks.",
        "settings_error_logo_url": "The logo URL must be an absolute https URL without spaces or "
        "a password, at most 512 characters.",
        "settings_error_support_contact": "The support contact is at most 200 characters, "
        "without line breaks.",
        "error_invalid_address": "This is not a wallet address. It starts with 0x and has 40 "
        "hexadecimal characters.",
        "error_payout_code_mismatch": "This address is a smart contract on some of your chains "
        "and has no code on others. A contract wallet usually exists only where it was deployed, "
        "so funds sent elsewhere can be lost. Check it, tick the box and save again.",
        "error_unknown_chain": "The gateway does not serve this chain.",
        "error_invalid_policy": "The tolerance is a percent from 0 to below 10, with at most 4 "
        "decimals; choose the other options from the lists.",
    },
    "zh-CN": {
        "settings_title": "设置",
        "settings_intro": "设置收款去向和顾客看到的内容。",
        "settings_saved_payout": "收款地址已保存，新订单将付款到该地址。",
        "settings_saved_payments": "付款规则已保存。",
        "settings_saved_cashier": "收银台信息已保存。",
        "settings_save": "保存",
        "settings_payout_title": "收款地址",
        "settings_payout_intro": "每笔付款都直接进入您在各链上的钱包，网关从不持有您的资金。请使"
        "用您在该链上掌控的地址；交易所充值地址可能无法入账合约转账。",
        "settings_payout_label": "{chain}（链 {chain_id}）",
        "settings_payout_current": "此链上的订单付款到这里。",
        "settings_payout_none": "尚未设置：设置地址之前，此链上的订单会被拒绝。",
        "settings_payout_confirm_mixed": "我已核实：此地址在这条链上也是我的钱包。",
        "settings_no_chains": "网关尚未配置任何链，请联系运营方。",
        "settings_payments_title": "付款规则",
        "settings_late_label": "订单过期后才到账的付款",
        "settings_late_record": "仅记录，订单保持过期",
        "settings_late_complete": "如足额付款则完成订单",
        "settings_late_hint": "无论哪种方式，您都会收到 Webhook 通知，付款也会记入订单。",
        "settings_tolerance_label": "少付容差",
        "settings_tolerance_hint": "少付不超过此比例的订单仍会完成（0 至 10% 以下，最多 4 位小数"
        "）。0 表示必须足额。",
        "settings_strategy_label": "新订单的收款地址",
        "settings_strategy_forwarder": "每个订单一个新收款地址（推荐）",
        "settings_strategy_unique_amount": "您的收款钱包，以唯一金额区分订单",
        "settings_strategy_hint": "每单地址由网关归集到您的钱包，燃料费由网关支付。唯一金额无需归"
        "集，但每个订单会多出几个最小单位。",
        "settings_cashier_title": "收银台页面",
        "settings_cashier_intro": "顾客付款页面上显示的内容。",
        "settings_display_name": "显示名称",
        "settings_display_name_hint": "留空则显示账户名称 {name}。",
        "settings_logo_url": "Logo 地址",
        "settings_logo_hint": "图片的 https 地址，最多 512 个字符。留空则不显示 Logo。",
        "settings_support_contact": "客服联系方式",
        "settings_support_hint": "顾客寻求帮助的邮箱、网页或简短说明。",
        "settings_error_display_name": "显示名称最多 80 个字符，不含换行。",
        "settings_error_logo_url": "Logo 地址必须是完整的 https 地址，不含空格或密码，最多 512 个"
        "字符。",
        "settings_error_support_contact": "客服联系方式最多 200 个字符，不含换行。",
        "error_invalid_address": "这不是钱包地址。地址以 0x 开头，后跟 40 个十六进制字符。",
        "error_payout_code_mismatch": "此地址在您的部分链上是智能合约，在其他链上却没有代码。合约"
        "钱包通常只存在于部署它的链上，付款到别处可能丢失。请核实后勾选确认框并再次保存。",
        "error_unknown_chain": "网关不支持这条链。",
        "error_invalid_policy": "容差为 0 至 10% 以下的百分比，最多 4 位小数；其他选项请从列表中"
        "选择。",
    },
}
