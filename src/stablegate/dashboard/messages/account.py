"""Sign-up, email confirmation, log-in and log-out, and the forgotten-password reset: the
pages and mails of account_pages.py and reset_pages.py, and their form errors."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
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
        "error_merchant_disabled": "The gateway's operator has disabled this account. Contact "
        "them to have it enabled again.",
        "error_invite_required": "Enter the invite code you were given.",
        "error_invalid_invite": "This invite code is not valid: it may be used or expired.",
        "error_invalid_link": "This link is not valid. Check that you copied all of it.",
        "error_expired_link": "This link has expired. Try to log in to get a new one.",
        "error_used_link": "This link was used already. If you confirmed your address, log in.",
        "error_link_address_changed": "This link was sent to an address the account no "
        "longer uses.",
        "forgot_link": "Forgot your password?",
        "forgot_title": "Reset your password",
        "forgot_text": "Enter your account's email address. We will send you a link to choose "
        "a new password.",
        "forgot_button": "Send me a link",
        "forgot_remembered": "Remembered it?",
        "forgot_sent_title": "Check your email",
        "forgot_sent": "If an account uses {email}, we sent a link to it. The link works for "
        "one hour and only once.",
        "forgot_sent_no_mail": "If an account uses {email}, the gateway's operator can give "
        "you a link to reset its password. The link works for one hour and only once.",
        "mail_reset_subject": "Reset the password of {name}",
        "mail_reset_body": "Hello,\n\nsomeone, hopefully you, asked to reset the password of "
        "the merchant account {name}. To choose a new one, open this link (it works for one "
        "hour and only once):\n\n{url}\n\nIf this was not you, ignore this message: your "
        "password stays as it is.\n",
        "reset_title": "Choose a new password",
        "reset_text": "For the account {email}. Your sessions in every browser will end.",
        "reset_two_factor": "Two-factor authentication stays on: you will still need a code "
        "to log in.",
        "reset_button": "Set new password",
        "password_reset_done": "Your password is changed. Log in with the new one.",
        "reset_failed_title": "This link does not work",
        "reset_invalid_link": "This link is not valid. Check that you copied all of it.",
        "reset_expired_link": "This link has expired: a reset link works for one hour.",
        "reset_used_link": "This link was used already: a reset link works once.",
        "reset_address_changed": "This link was sent to an address the account no longer uses.",
        "reset_ask_again": "Ask for a new link",
    },
    "zh-CN": {
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
        "error_invalid_name": "请输入商户名称（最多 200 个字符，不含换行）。",
        "error_invalid_email": "请输入有效的电子邮箱地址。",
        "error_password_too_short": "密码至少需要 {min} 个字符。",
        "error_password_too_long": "密码最多 {max} 个字符。",
        "error_email_taken": "该邮箱已有账户，请直接登录。",
        "error_invalid_credentials": "邮箱或密码错误。",
        "error_email_not_verified": "请先通过我们发送的邮件链接确认邮箱。"
        "登录时如果上一封链接已超过 5 分钟，我们会发送新的链接。",
        "error_merchant_pending": "网关运营方尚未审核通过您的账户。",
        "error_merchant_disabled": "网关运营方已停用此账户。如需重新启用，请联系运营方。",
        "error_invite_required": "请输入您收到的邀请码。",
        "error_invalid_invite": "邀请码无效：可能已被使用或已过期。",
        "error_invalid_link": "此链接无效，请检查是否完整复制。",
        "error_expired_link": "此链接已过期。请尝试登录以获取新链接。",
        "error_used_link": "此链接已被使用。如果您已确认邮箱，请直接登录。",
        "error_link_address_changed": "此链接发送到的邮箱已不再是该账户的邮箱。",
        "forgot_link": "忘记密码？",
        "forgot_title": "重置密码",
        "forgot_text": "请输入账户的电子邮箱。我们会向您发送一个设置新密码的链接。",
        "forgot_button": "发送链接",
        "forgot_remembered": "想起来了？",
        "forgot_sent_title": "请查收邮件",
        "forgot_sent": "如果有账户使用 {email}，我们已向其发送了一个链接。链接 1 小时内有效，"
        "仅可使用一次。",
        "forgot_sent_no_mail": "如果有账户使用 {email}，网关运营方可以为您提供重置密码的链接。"
        "链接 1 小时内有效，仅可使用一次。",
        "mail_reset_subject": "重置 {name} 的密码",
        "mail_reset_body": "您好：\n\n有人（希望是您）请求重置商户账户 {name} 的密码。"
        "请打开以下链接设置新密码（1 小时内有效，仅可使用一次）：\n\n{url}\n\n"
        "如果这不是您本人的操作，请忽略此邮件，您的密码不会改变。\n",
        "reset_title": "设置新密码",
        "reset_text": "账户：{email}。您在所有浏览器中的会话都将结束。",
        "reset_two_factor": "两步验证仍然开启：登录时仍需要验证码。",
        "reset_button": "设置新密码",
        "password_reset_done": "密码已修改。请使用新密码登录。",
        "reset_failed_title": "此链接无法使用",
        "reset_invalid_link": "此链接无效，请检查是否完整复制。",
        "reset_expired_link": "此链接已过期：重置链接 1 小时内有效。",
        "reset_used_link": "此链接已被使用：重置链接仅可使用一次。",
        "reset_address_changed": "此链接发送到的邮箱已不再是该账户的邮箱。",
        "reset_ask_again": "重新获取链接",
    },
}
