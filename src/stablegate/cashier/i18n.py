"""The cashier page's two languages: English and Simplified Chinese.

The language comes from ``?lang=`` when it names one we have, else from Accept-Language (by
q-value; any ``zh`` tag reads Simplified Chinese), else English. Messages are plain text with
``{name}`` fields; the templates escape them like any other text.
"""

from __future__ import annotations

from stablegate.web.i18n import Translator

DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "page_title": "Pay {amount} {symbol}",
        "heading": "Pay with {symbol}",
        "order": "Order",
        "amount": "Amount",
        "token": "Token",
        "network": "Network",
        "chain_id": "chain ID {chain_id}",
        "token_contract": "Token contract",
        "deposit_address": "Deposit address",
        "copy": "Copy",
        "copied": "Copied",
        "copy_failed": "Copy failed: select the text and copy it",
        "copy_amount": "Copy amount",
        "copy_address": "Copy address",
        "qr_label": "QR code",
        "qr_modes": "What the QR code holds",
        "qr_alt_address": "QR code of the deposit address {address}",
        "qr_alt_eip681": "QR code of a payment request for {amount} {symbol} to {address}",
        "qr_address": "Address only",
        "qr_eip681": "Address and amount (EIP-681)",
        "qr_hint_address": "The code holds the address only: enter the amount in your wallet.",
        "qr_hint_eip681": "Not every wallet reads the amount from this code: check it before "
        "you pay.",
        "send_exactly": "Send exactly {amount} {symbol} on {network} to the address below.",
        "warning": "Send only {symbol} on {network}. Other tokens or networks cannot be credited.",
        "status": "Status",
        "status_pending": "Waiting for payment",
        "status_confirming": "Payment received, confirming",
        "status_completed": "Payment complete",
        "status_expired": "This order has expired",
        "status_cancelled": "This order was cancelled",
        "do_not_pay": "Do not send funds to this address any more.",
        "received": "Received {paid} of {amount} {symbol}",
        "confirmations": "Confirmations: {count}",
        "confirmations_of": "Confirmations: {count} of {required}",
        "expires_at": "Expires at:",
        "time_left": "Time left:",
        "time_up": "Time is up",
        "return_to_merchant": "Return to the merchant",
        "refresh": "Refresh status",
        "no_js": "This page refreshes itself every 15 seconds.",
        "language": "Language",
        "dev_pay": "Pay with test wallet",
        "dev_pay_hint": "Dev chain only: sends the amount due from a funded test account.",
        "dev_pay_sent": "Test payment sent. The status updates when the gateway sees it.",
        "dev_pay_failed": "The test payment failed: is the dev chain running?",
        "not_found_title": "Order not found",
        "not_found_text": "There is no order at this address. Check the link you were given, "
        "or ask the merchant for a new one.",
        "rate_limited_title": "Too many requests",
        "rate_limited_text": "Please wait a minute and reload this page.",
        "powered_by": "Non-custodial payment by stablegate",
        "heading_paid": "Paid",
        "amount_due": "Amount due",
        "of_amount": "of {amount} {symbol}",
        "fiat_price": "{fiat} {currency} = {amount} {symbol} at {rate}",
        "send_remaining": "Send the remaining {due} {symbol} on {network} to the address below.",
        "state_paid_over": "You sent {over} {symbol} more than the order's {amount} {symbol}. "
        "The order is paid; contact the merchant to get the extra back.",
        "state_late": "Your payment of {received} {symbol} arrived after this order expired, so "
        "it was not accepted automatically. Do not send more: contact the merchant, who can "
        "complete the order or refund you.",
        "state_expired_partial": "This order expired with {received} of {amount} {symbol} "
        "received. Do not send the rest: contact the merchant to complete the order or get a "
        "refund.",
        "wrong_token_line": "We received {amount} {symbol} at this address, but this order "
        "expects {expected}.",
        "wrong_token_unknown": "We received a transfer of token {token} ({amount} base units) at "
        "this address, but this order expects {expected}.",
        "wrong_token_what": "It does not count towards this order and is not refunded "
        "automatically. Do not send it again: contact the merchant to get it back.",
        "support": "Contact {merchant}:",
        "support_none": "Contact {merchant} about this payment and give them the order ID "
        "{order_id}.",
        "support_label": "Support",
        "merchant_label": "Paying",
        "merchant_logo": "{merchant} logo",
        "transaction": "Transaction",
        "view_on_explorer": "View on block explorer",
        "paid_at": "Paid at",
        "pay_with_wallet": "Pay with wallet",
        "pay_with_named": "Pay with {wallet}",
        "wallet_apps": "Open in a wallet app",
        "wallet_apps_hint": "Opens this page in your wallet's browser, where Pay with wallet "
        "works.",
        "eip681_link": "Open the payment request (EIP-681)",
        "wallet_connecting": "Confirm in your wallet…",
        "wallet_switching": "Switch your wallet to {network}…",
        "wallet_confirm": "Confirm the transfer of {due} {symbol} in your wallet…",
        "wallet_sent": "Transaction sent: {hash}. This page updates when the network confirms it.",
        "wallet_rejected": "You cancelled in your wallet. Nothing was sent; you can try again.",
        "wallet_no_chain": "Your wallet does not know {network} (chain ID {chain_id}). Add "
        "the network in your wallet, then try again, or pay by address and QR code.",
        "wallet_error": "Your wallet could not send the payment: {error}. Nothing was sent; "
        "you can try again or pay by address and QR code.",
        "wallet_no_account": "Your wallet gave no account: unlock it and try again.",
        "choose_heading": "Choose how to pay",
        "status_choosing": "Waiting for your choice",
        "choose_intro": "Pick the token and network you will pay with",
        "choose_fiat": "Price: {fiat} {currency}. The token amount is set at the current rate "
        "when you pick.",
        "choose_hint": "The deposit address appears once you have chosen. The choice cannot be "
        "changed afterwards.",
        "choice_label": "Pay with {symbol} on {network}",
        "choice_refused_title": "Payment method not chosen",
        "choice_already_made": "Another payment method has already been chosen for this order. "
        "Go back to the order to pay with it.",
        "choice_not_offered": "This order does not offer that payment method.",
        "choice_closed": "This order can no longer be paid: it has expired or was closed.",
        "choice_paid": "A payment has already arrived for this order, so its payment method "
        "cannot be changed.",
        "choice_unavailable": "This payment method is unavailable right now. Try again in a "
        "minute, or choose another.",
        "choice_cross_origin": "The choice must be made on the order's own page: open the order "
        "link you were given and choose there.",
        "back_to_order": "Back to the order",
    },
    "zh-CN": {
        "page_title": "支付 {amount} {symbol}",
        "heading": "使用 {symbol} 支付",
        "order": "订单",
        "amount": "金额",
        "token": "代币",
        "network": "网络",
        "chain_id": "链 ID {chain_id}",
        "token_contract": "代币合约",
        "deposit_address": "收款地址",
        "copy": "复制",
        "copied": "已复制",
        "copy_failed": "复制失败：请手动选择文本复制",
        "copy_amount": "复制金额",
        "copy_address": "复制地址",
        "qr_label": "二维码",
        "qr_modes": "二维码内容",
        "qr_alt_address": "收款地址 {address} 的二维码",
        "qr_alt_eip681": "向 {address} 支付 {amount} {symbol} 的付款请求二维码",
        "qr_address": "仅地址",
        "qr_eip681": "地址和金额 (EIP-681)",
        "qr_hint_address": "二维码仅包含地址：请在钱包中输入金额。",
        "qr_hint_eip681": "并非所有钱包都能读取此二维码中的金额：付款前请核对。",
        "send_exactly": "请在 {network} 上向以下地址转账 {amount} {symbol}（金额须完全一致）。",
        "warning": "仅可发送 {network} 上的 {symbol}。其他代币或网络的转账无法入账。",
        "status": "状态",
        "status_pending": "等待付款",
        "status_confirming": "已收到付款，确认中",
        "status_completed": "支付完成",
        "status_expired": "订单已过期",
        "status_cancelled": "订单已取消",
        "do_not_pay": "请勿再向此地址转账。",
        "received": "已收到 {paid} / {amount} {symbol}",
        "confirmations": "确认数：{count}",
        "confirmations_of": "确认数：{count} / {required}",
        "expires_at": "过期时间：",
        "time_left": "剩余时间：",
        "time_up": "已超时",
        "return_to_merchant": "返回商户",
        "refresh": "刷新状态",
        "no_js": "本页面每 15 秒自动刷新。",
        "language": "语言",
        "dev_pay": "使用测试钱包支付",
        "dev_pay_hint": "仅限开发链：从有余额的测试账户发送应付金额。",
        "dev_pay_sent": "测试付款已发送，网关检测到后状态将自动更新。",
        "dev_pay_failed": "测试付款失败：开发链是否在运行？",
        "not_found_title": "未找到订单",
        "not_found_text": "此地址没有对应的订单。请检查您收到的链接，或向商户索取新的链接。",
        "rate_limited_title": "请求过多",
        "rate_limited_text": "请稍等一分钟后刷新本页面。",
        "powered_by": "由 stablegate 提供非托管支付",
        "heading_paid": "已支付",
        "amount_due": "应付金额",
        "of_amount": "共 {amount} {symbol}",
        "fiat_price": "{fiat} {currency} = {amount} {symbol}（汇率 {rate}）",
        "send_remaining": "请在 {network} 上向以下地址转账剩余的 {due} {symbol}。",
        "state_paid_over": "您比订单金额 {amount} {symbol} 多付了 {over} {symbol}。订单已支付；"
        "请联系商户退还多付部分。",
        "state_late": "您支付的 {received} {symbol} 在订单过期后才到账，因此未被自动接受。"
        "请勿再转账：请联系商户，商户可以完成订单或为您退款。",
        "state_expired_partial": "订单已过期，已收到 {received} / {amount} {symbol}。"
        "请勿再转账剩余金额：请联系商户完成订单或退款。",
        "wrong_token_line": "此地址收到了 {amount} {symbol}，但本订单需要的是 {expected}。",
        "wrong_token_unknown": "此地址收到了代币 {token} 的转账（{amount} 最小单位），"
        "但本订单需要的是 {expected}。",
        "wrong_token_what": "这笔转账不计入本订单，也不会自动退回。请勿再次发送：请联系商户取回。",
        "support": "联系 {merchant}：",
        "support_none": "请就此付款联系 {merchant}，并提供订单号 {order_id}。",
        "support_label": "客服",
        "merchant_label": "收款方",
        "merchant_logo": "{merchant} 标志",
        "transaction": "交易",
        "view_on_explorer": "在区块浏览器中查看",
        "paid_at": "支付时间",
        "pay_with_wallet": "使用钱包支付",
        "pay_with_named": "使用 {wallet} 支付",
        "wallet_apps": "在钱包应用中打开",
        "wallet_apps_hint": "在钱包内置浏览器中打开本页面，即可使用“使用钱包支付”。",
        "eip681_link": "打开付款请求 (EIP-681)",
        "wallet_connecting": "请在钱包中确认…",
        "wallet_switching": "请将钱包切换到 {network}…",
        "wallet_confirm": "请在钱包中确认转账 {due} {symbol}…",
        "wallet_sent": "交易已发送：{hash}。网络确认后本页面会自动更新。",
        "wallet_rejected": "您已在钱包中取消，未发送任何资金；可以重试。",
        "wallet_no_chain": "您的钱包中没有 {network}（链 ID {chain_id}）。"
        "请先在钱包中添加该网络后重试，或使用地址和二维码付款。",
        "wallet_error": "钱包未能发送付款：{error}。未发送任何资金；"
        "可以重试，或使用地址和二维码付款。",
        "wallet_no_account": "钱包没有提供账户：请解锁钱包后重试。",
        "choose_heading": "选择付款方式",
        "status_choosing": "等待您选择付款方式",
        "choose_intro": "请选择您要使用的代币和网络",
        "choose_fiat": "价格：{fiat} {currency}。代币金额在您选择时按当时汇率确定。",
        "choose_hint": "选择后将显示收款地址。选择后无法更改。",
        "choice_label": "在 {network} 上使用 {symbol} 支付",
        "choice_refused_title": "未能选择付款方式",
        "choice_already_made": "本订单已选择了其他付款方式。请返回订单页面使用该方式付款。",
        "choice_not_offered": "本订单不提供该付款方式。",
        "choice_closed": "本订单已过期或已关闭，无法再付款。",
        "choice_paid": "本订单已收到付款，无法更改付款方式。",
        "choice_unavailable": "该付款方式暂不可用。请稍后重试，或选择其他方式。",
        "choice_cross_origin": "必须在订单本身的页面上进行选择："
        "请打开您收到的订单链接并在其中选择。",
        "back_to_order": "返回订单",
    },
}

# The messages the page's script needs after load (status changes, copy feedback, countdown).
SCRIPT_MESSAGES = (
    "status_pending",
    "status_confirming",
    "status_completed",
    "status_expired",
    "status_cancelled",
    "status_choosing",
    "received",
    "confirmations",
    "confirmations_of",
    "copied",
    "copy_failed",
    "time_up",
    "qr_alt_address",
    "qr_alt_eip681",
    "qr_hint_address",
    "qr_hint_eip681",
    "heading",
    "heading_paid",
    "amount",
    "amount_due",
    "of_amount",
    "send_exactly",
    "send_remaining",
    "do_not_pay",
    "state_paid_over",
    "state_late",
    "state_expired_partial",
    "wrong_token_line",
    "wrong_token_unknown",
    "pay_with_wallet",
    "pay_with_named",
    "wallet_connecting",
    "wallet_switching",
    "wallet_confirm",
    "wallet_sent",
    "wallet_rejected",
    "wallet_no_chain",
    "wallet_error",
    "wallet_no_account",
)


def _match(tag: str) -> str | None:
    tag = tag.strip().lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    return None


def negotiate_language(requested: str | None, accept_language: str | None) -> str:
    """``?lang=`` if we have it, else the best Accept-Language match, else English."""
    if requested:
        for code in LANGUAGES:
            if requested.lower() == code.lower():
                return code
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        matched = _match(tag)
        if matched is not None and quality > 0:
            ranked.append((-quality, position, matched))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def translator(language: str) -> Translator:
    """The cashier's messages in ``language`` (English when we do not have it)."""
    return Translator(MESSAGES, language, DEFAULT_LANGUAGE)


def script_messages(t: Translator) -> dict[str, str]:
    return {key: t(key) for key in SCRIPT_MESSAGES}
