"""The dashboard's two languages, English and Simplified Chinese, chosen like the cashier's
(:func:`stablegate.cashier.i18n.negotiate_language`: ``?lang=``, then Accept-Language), with the
choice kept in a cookie so forms and redirects stay in it. Messages are plain text with
``{name}`` fields; the templates escape them like any other text."""

from __future__ import annotations

from stablegate.cashier.i18n import DEFAULT_LANGUAGE, LANGUAGES, negotiate_language
from stablegate.web.i18n import Translator

__all__ = ["LANGUAGES", "MESSAGES", "choose_language", "translator"]

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "product": "stablegate",
        "dashboard": "Merchant dashboard",
        "language": "Language",
        "main_menu": "Main menu",
        "nav_keys": "API keys",
        "nav_security": "Security",
        "log_out": "Log out",
        "signed_in_as": "Signed in as {email}",
        "signup_title": "Create a merchant account",
        "signup_intro": "Accept stablecoin payments on your own gateway. Your account holds "
        "your API keys; payments go straight to your own wallet.",
        "field_name": "Business name",
        "field_email": "Email address",
        "field_password": "Password",
        "password_hint": "At least {min} characters.",
        "field_invite": "Invite code",
        "signup_button": "Create account",
        "have_account": "Already have an account?",
        "log_in_link": "Log in",
        "policy_open": "We will email you a link to confirm your address.",
        "policy_approval": "The gateway's operator approves new accounts before they can log in.",
        "policy_invite": "Sign-up needs an invite code from the gateway's operator.",
        "login_title": "Log in",
        "login_button": "Log in",
        "no_account": "New here?",
        "sign_up_link": "Create an account",
        "signed_up_title": "Account created",
        "signed_up_verify": "We sent a link to {email}. Open it to confirm your address, then "
        "log in. The link works for 24 hours.",
        "signed_up_mail_failed": "We could not send the email to {email}. Ask the gateway's "
        "operator for your confirmation link.",
        "signed_up_approval": "The gateway's operator will review your account. You can log in "
        "once it is approved and your address is confirmed.",
        "signed_up_no_mail": "The gateway's operator will send you a link to confirm your "
        "address {email}. Open it, then log in.",
        "mail_verify_subject": "Confirm your email address for {name}",
        "mail_verify_body": "Hello,\n\nsomeone, hopefully you, created the merchant account "
        "{name} with this address. To confirm it, open this link (it works for 24 hours and "
        "only once):\n\n{url}\n\nIf this was not you, ignore this message.\n",
        "signed_up_ready": "Your account is ready. You can log in now.",
        "verify_title": "Confirm your email address",
        "verify_text": "Confirm that this address is yours to finish setting up your account.",
        "verify_button": "Confirm my address",
        "verified_title": "Email address confirmed",
        "verified_text": "Your address {email} is confirmed. You can log in now.",
        "link_failed_title": "This link does not work",
        "logged_out": "You are logged out.",
        "error_summary": "The form could not be sent:",
        "error_invalid_name": "Enter your business name (up to 200 characters, no line breaks).",
        "error_invalid_email": "Enter a valid email address.",
        "error_password_too_short": "The password must be at least {min} characters.",
        "error_password_too_long": "The password must be at most {max} characters.",
        "error_email_taken": "An account with this email address exists. Log in instead.",
        "error_invalid_credentials": "The email address or password is wrong.",
        "error_email_not_verified": "Confirm your email address first with the link we "
        "emailed you. When you try to log in and your last link is more than 5 minutes old, "
        "we send a new one.",
        "error_merchant_pending": "The gateway's operator has not approved your account yet.",
        "error_invite_required": "Enter the invite code you were given.",
        "error_invalid_invite": "This invite code is not valid: it may be used or expired.",
        "error_invalid_link": "This link is not valid. Check that you copied all of it.",
        "error_expired_link": "This link has expired. Try to log in to get a new one.",
        "error_used_link": "This link was used already. If you confirmed your address, log in.",
        "error_csrf_failed": "This form has expired, or your browser blocks cookies. Reload "
        "the page and try again.",
        "error_rate_limited": "Too many attempts. Wait {seconds} seconds and try again.",
        "error_invalid_label": "A key label is at most 80 characters, without line breaks.",
        "error_not_found": "There is nothing here, or it is not yours.",
        "not_found_title": "Not found",
        "keys_title": "API keys",
        "keys_intro": "Your backend signs its requests with an API key and its secret. Create "
        "one key per system, so you can revoke one without touching the others.",
        "merchant_id": "Merchant ID",
        "create_key": "Create a key",
        "key_label": "Label (optional)",
        "key_label_hint": "For you, e.g. “shop backend”.",
        "create_button": "Create key",
        "your_keys": "Your keys",
        "col_label": "Label",
        "col_key": "Key",
        "col_created": "Created",
        "col_status": "Status",
        "col_action": "Action",
        "status_active": "Active",
        "status_revoked": "Revoked {time}",
        "no_label": "(no label)",
        "revoke": "Revoke",
        "revoke_named": "Revoke key {prefix}…",
        "revoke_confirm": "Revoke this key? Requests signed with it fail at once.",
        "revoked_notice": "Key {prefix}… is revoked.",
        "no_keys": "You have no API keys yet.",
        "no_action": "None",
        "no_payout": "The operator has not set a payout address for your account yet: orders "
        "can be created once there is one.",
        "key_created_title": "Your new API key",
        "key_created_warning": "Copy the secret key now. It is shown only on this page and "
        "cannot be shown again; if you lose it, create a new key and revoke this one.",
        "api_key": "API key",
        "secret_key": "Secret key",
        "copy": "Copy",
        "copied": "Copied",
        "copy_failed": "Copy failed: select the text and copy it",
        "copy_api_key": "Copy API key",
        "copy_secret_key": "Copy secret key",
        "key_created_next": "Keep both in your backend's secret configuration. The secret key "
        "signs requests; never put it in a web page or an app.",
        "back_to_keys": "Back to API keys",
        "security_title": "Security",
        "sessions_title": "Where you are logged in",
        "sessions_intro": "A session ends after 7 days, or after 24 hours without use. End any "
        "you do not recognise.",
        "col_browser": "Browser",
        "col_address": "Address",
        "col_started": "Started",
        "col_last_seen": "Last used",
        "this_session": "This session",
        "end_session": "End",
        "end_and_log_out": "End and log out",
        "end_named": "End the session started {time}",
        "session_ended": "The session is ended.",
        "unknown_browser": "Unknown browser",
        "nav_settings": "Settings",
        "settings_title": "Settings",
        "settings_intro": "Where your payments go and what your customers see. Changes apply to "
        "orders created after them.",
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
        "product": "stablegate",
        "dashboard": "商户后台",
        "language": "语言",
        "main_menu": "主菜单",
        "nav_keys": "API 密钥",
        "nav_security": "安全",
        "log_out": "退出登录",
        "signed_in_as": "当前登录：{email}",
        "signup_title": "创建商户账户",
        "signup_intro": "在您自己的网关上接收稳定币付款。账户保管您的 API 密钥；"
        "款项直接进入您自己的钱包。",
        "field_name": "商户名称",
        "field_email": "电子邮箱",
        "field_password": "密码",
        "password_hint": "至少 {min} 个字符。",
        "field_invite": "邀请码",
        "signup_button": "创建账户",
        "have_account": "已有账户？",
        "log_in_link": "登录",
        "policy_open": "我们会向您的邮箱发送一个确认链接。",
        "policy_approval": "新账户须经网关运营方审核后才能登录。",
        "policy_invite": "注册需要网关运营方提供的邀请码。",
        "login_title": "登录",
        "login_button": "登录",
        "no_account": "还没有账户？",
        "sign_up_link": "创建账户",
        "signed_up_title": "账户已创建",
        "signed_up_verify": "我们已向 {email} 发送了一个链接。请打开该链接确认邮箱，然后登录。"
        "链接 24 小时内有效。",
        "signed_up_mail_failed": "无法向 {email} 发送邮件。请向网关运营方索取您的确认链接。",
        "signed_up_approval": "网关运营方将审核您的账户。审核通过且邮箱确认后即可登录。",
        "signed_up_no_mail": "网关运营方会将确认邮箱 {email} 的链接发送给您。打开链接后即可登录。",
        "mail_verify_subject": "确认 {name} 的邮箱地址",
        "mail_verify_body": "您好：\n\n有人（希望是您）使用此邮箱创建了商户账户 {name}。"
        "请打开以下链接确认（24 小时内有效，仅可使用一次）：\n\n{url}\n\n"
        "如果这不是您本人的操作，请忽略此邮件。\n",
        "signed_up_ready": "您的账户已就绪，现在可以登录。",
        "verify_title": "确认您的邮箱",
        "verify_text": "确认此邮箱属于您，以完成账户设置。",
        "verify_button": "确认我的邮箱",
        "verified_title": "邮箱已确认",
        "verified_text": "您的邮箱 {email} 已确认，现在可以登录。",
        "link_failed_title": "此链接无法使用",
        "logged_out": "您已退出登录。",
        "error_summary": "表单未能提交：",
        "error_invalid_name": "请输入商户名称（最多 200 个字符，不含换行）。",
        "error_invalid_email": "请输入有效的电子邮箱地址。",
        "error_password_too_short": "密码至少需要 {min} 个字符。",
        "error_password_too_long": "密码最多 {max} 个字符。",
        "error_email_taken": "该邮箱已有账户，请直接登录。",
        "error_invalid_credentials": "邮箱或密码错误。",
        "error_email_not_verified": "请先通过我们发送的邮件链接确认邮箱。"
        "登录时如果上一封链接已超过 5 分钟，我们会发送新的链接。",
        "error_merchant_pending": "网关运营方尚未审核通过您的账户。",
        "error_invite_required": "请输入您收到的邀请码。",
        "error_invalid_invite": "邀请码无效：可能已被使用或已过期。",
        "error_invalid_link": "此链接无效，请检查是否完整复制。",
        "error_expired_link": "此链接已过期。请尝试登录以获取新链接。",
        "error_used_link": "此链接已被使用。如果您已确认邮箱，请直接登录。",
        "error_csrf_failed": "表单已过期，或浏览器阻止了 Cookie。请刷新页面后重试。",
        "error_rate_limited": "尝试次数过多，请等待 {seconds} 秒后重试。",
        "error_invalid_label": "密钥标签最多 80 个字符，不含换行。",
        "error_not_found": "此处没有内容，或不属于您。",
        "not_found_title": "未找到",
        "keys_title": "API 密钥",
        "keys_intro": "您的后端使用 API 密钥及其私钥为请求签名。建议每个系统使用单独的密钥，"
        "这样撤销其中一个不会影响其他系统。",
        "merchant_id": "商户 ID",
        "create_key": "创建密钥",
        "key_label": "标签（可选）",
        "key_label_hint": "供您自己识别，例如“商城后端”。",
        "create_button": "创建密钥",
        "your_keys": "您的密钥",
        "col_label": "标签",
        "col_key": "密钥",
        "col_created": "创建时间",
        "col_status": "状态",
        "col_action": "操作",
        "status_active": "有效",
        "status_revoked": "已于 {time} 撤销",
        "no_label": "（无标签）",
        "revoke": "撤销",
        "revoke_named": "撤销密钥 {prefix}…",
        "revoke_confirm": "确定撤销此密钥？使用它签名的请求将立即失败。",
        "revoked_notice": "密钥 {prefix}… 已撤销。",
        "no_keys": "您还没有 API 密钥。",
        "no_action": "无",
        "no_payout": "运营方尚未为您的账户设置收款地址：设置后即可创建订单。",
        "key_created_title": "您的新 API 密钥",
        "key_created_warning": "请立即复制私钥。它只在此页面显示一次，之后无法再次查看；"
        "如果丢失，请创建新密钥并撤销此密钥。",
        "api_key": "API 密钥",
        "secret_key": "私钥",
        "copy": "复制",
        "copied": "已复制",
        "copy_failed": "复制失败：请手动选择文本复制",
        "copy_api_key": "复制 API 密钥",
        "copy_secret_key": "复制私钥",
        "key_created_next": "请将两者保存在后端的保密配置中。私钥用于签名请求，"
        "切勿放在网页或应用中。",
        "back_to_keys": "返回 API 密钥",
        "security_title": "安全",
        "sessions_title": "您的登录会话",
        "sessions_intro": "会话在 7 天后或 24 小时未使用后结束。如有不认识的会话，请结束它。",
        "col_browser": "浏览器",
        "col_address": "地址",
        "col_started": "开始时间",
        "col_last_seen": "最近使用",
        "this_session": "当前会话",
        "end_session": "结束",
        "end_and_log_out": "结束并退出登录",
        "end_named": "结束 {time} 开始的会话",
        "session_ended": "会话已结束。",
        "unknown_browser": "未知浏览器",
        "nav_settings": "设置",
        "settings_title": "设置",
        "settings_intro": "设置收款去向和顾客看到的内容。更改仅对之后创建的订单生效。",
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


def choose_language(requested: str | None, cookie: str | None, accept_language: str | None) -> str:
    """``?lang=``, else the language cookie, else Accept-Language, else English."""
    for candidate in (requested, cookie):
        if candidate and candidate in LANGUAGES:
            return candidate
    return negotiate_language(None, accept_language)


def translator(language: str) -> Translator:
    """The dashboard's messages in ``language`` (English when we do not have it)."""
    return Translator(MESSAGES, language, DEFAULT_LANGUAGE)
