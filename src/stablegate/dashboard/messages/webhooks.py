"""The Webhooks page (webhook_pages.py): the notify URL, the signing secret, the test event and
the delivery log."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "webhooks_title": "Webhooks",
        "webhooks_intro": "The gateway posts a signed event to your server whenever an order "
        "changes, and retries for 72 hours until your server answers with a 2xx.",
        "webhooks_url_saved": "Notify URL saved.",
        "webhooks_url_cleared": "Notify URL cleared: events wait until you set one.",
        "webhooks_resent": "Event {event} is queued again; its new attempt appears below once "
        "it is sent.",
        "webhooks_url_title": "Notify URL",
        "webhooks_url_current": "Events go to",
        "webhooks_url_none": "No notify URL is set: events are kept, and are not sent until "
        "you set one (an order's own notifyUrl still works).",
        "webhooks_url_label": "Default notify URL",
        "webhooks_url_hint": "An http or https URL reachable from the internet, used by "
        "orders created without a notifyUrl. Leave it empty to clear it.",
        "webhooks_url_save": "Save URL",
        "webhooks_secret_title": "Webhook secret",
        "webhooks_secret_intro": "Your server checks each event's BlockATM-Signature-V2 with "
        "this secret. After a rotation the old secret still signs every event for 24 hours, "
        "next to the new one, so you can switch without losing events.",
        "webhooks_secret_previous": "The previous secret still signs events until {time}.",
        "webhooks_secret_confirm": "Make a new webhook secret? The current one keeps working "
        "for 24 hours.",
        "webhooks_secret_rotate": "Rotate secret",
        "webhooks_secret_new_title": "Your new webhook secret",
        "webhooks_secret_new_warning": "Copy the secret now. It is shown on this page only "
        "once, and cannot be shown again.",
        "webhooks_secret_new_grace": "Events are signed with both the new and the previous "
        "secret until {time}: update your server before then.",
        "webhooks_copy_secret": "Copy webhook secret",
        "webhooks_back": "Back to webhooks",
        "webhooks_test_title": "Test event",
        "webhooks_test_intro": 'Sends a signed event of type "test", with no order, to your '
        "notify URL now, and shows what your server answered.",
        "webhooks_test_send": "Send a test event",
        "webhooks_test_delivered": "Delivered: your server answered HTTP {status}.",
        "webhooks_test_refused": "Not delivered: your server answered HTTP {status}.",
        "webhooks_test_error": "Not delivered: your server could not be reached.",
        "webhooks_response_body": "Response",
        "webhooks_log_title": "Delivery log",
        "webhooks_log_intro": "Every attempt, newest first. Resend puts an event back in the "
        "queue at once.",
        "webhooks_log_empty": "No event has been sent yet.",
        "webhooks_col_time": "Time",
        "webhooks_col_event": "Event",
        "webhooks_col_attempt": "Attempt",
        "webhooks_col_url": "URL",
        "webhooks_col_outcome": "Outcome",
        "webhooks_col_response": "Response or error",
        "webhooks_col_error": "Error",
        "webhooks_order": "order {order}",
        "webhooks_no_url": "none",
        "webhooks_no_body": "empty",
        "webhooks_outcome_success": "delivered",
        "webhooks_outcome_failure": "refused",
        "webhooks_outcome_error": "no answer",
        "webhooks_outcome_skipped": "no URL",
        "webhooks_resend": "Resend",
        "webhooks_event_pending": "Event: waiting for its next attempt",
        "webhooks_event_delivered": "Event: delivered",
        "webhooks_event_failed": "Event: failed for 72 hours, not retried",
        "webhooks_event_no_endpoint": "Event: not sent, no notify URL",
        "webhooks_resend_named": "Resend the {type} event of {time}",
        "webhooks_pages": "Delivery log pages",
        "webhooks_newest": "Newest attempts",
        "webhooks_older": "Older attempts",
        "error_invalid_notify_url": "This URL cannot be called: give an absolute http or https "
        "URL with a valid host name, and no user name or password.",
        "error_notify_url_private": "This URL points at a private or reserved address; the "
        "gateway only calls public addresses.",
        "error_no_notify_url": "Set a notify URL first: the test event is sent there.",
    },
    "zh-CN": {
        "webhooks_title": "Webhook",
        "webhooks_intro": "订单每次变化时，网关都会向您的服务器发送一个已签名的事件，"
        "并在 72 小时内重试，直到服务器返回 2xx。",
        "webhooks_url_saved": "通知 URL 已保存。",
        "webhooks_url_cleared": "通知 URL 已清除：事件会保留，直到您重新设置。",
        "webhooks_resent": "事件 {event} 已重新排队；发送后，新的尝试会显示在下方。",
        "webhooks_url_title": "通知 URL",
        "webhooks_url_current": "事件发送到",
        "webhooks_url_none": "尚未设置通知 URL：事件会保留，设置后才会发送"
        "（订单自己的 notifyUrl 仍然有效）。",
        "webhooks_url_label": "默认通知 URL",
        "webhooks_url_hint": "可从互联网访问的 http 或 https URL，用于未指定 notifyUrl 的订单。"
        "留空即清除。",
        "webhooks_url_save": "保存 URL",
        "webhooks_secret_title": "Webhook 密钥",
        "webhooks_secret_intro": "您的服务器用此密钥校验每个事件的 BlockATM-Signature-V2。"
        "轮换后，旧密钥在 24 小时内仍会与新密钥一起签名，方便您无缝切换。",
        "webhooks_secret_previous": "旧密钥在 {time} 之前仍会签名事件。",
        "webhooks_secret_confirm": "生成新的 Webhook 密钥？当前密钥在 24 小时内仍然有效。",
        "webhooks_secret_rotate": "轮换密钥",
        "webhooks_secret_new_title": "您的新 Webhook 密钥",
        "webhooks_secret_new_warning": "请立即复制密钥。它只在此页面显示一次，之后无法再次查看。",
        "webhooks_secret_new_grace": "在 {time} 之前，事件会同时用新旧两个密钥签名："
        "请在此之前更新您的服务器。",
        "webhooks_copy_secret": "复制 Webhook 密钥",
        "webhooks_back": "返回 Webhook",
        "webhooks_test_title": "测试事件",
        "webhooks_test_intro": '立即向您的通知 URL 发送一个类型为 "test"、不属于任何订单的'
        "已签名事件，并显示服务器的响应。",
        "webhooks_test_send": "发送测试事件",
        "webhooks_test_delivered": "已送达：服务器返回 HTTP {status}。",
        "webhooks_test_refused": "未送达：服务器返回 HTTP {status}。",
        "webhooks_test_error": "未送达：无法连接到您的服务器。",
        "webhooks_response_body": "响应",
        "webhooks_log_title": "发送记录",
        "webhooks_log_intro": "每次尝试，最新的在前。“重新发送”会立即将事件放回队列。",
        "webhooks_log_empty": "尚未发送任何事件。",
        "webhooks_col_time": "时间",
        "webhooks_col_event": "事件",
        "webhooks_col_attempt": "尝试",
        "webhooks_col_url": "URL",
        "webhooks_col_outcome": "结果",
        "webhooks_col_response": "响应或错误",
        "webhooks_col_error": "错误",
        "webhooks_order": "订单 {order}",
        "webhooks_no_url": "无",
        "webhooks_no_body": "空",
        "webhooks_outcome_success": "已送达",
        "webhooks_outcome_failure": "被拒绝",
        "webhooks_outcome_error": "无响应",
        "webhooks_outcome_skipped": "无 URL",
        "webhooks_resend": "重新发送",
        "webhooks_event_pending": "事件：等待下一次尝试",
        "webhooks_event_delivered": "事件：已送达",
        "webhooks_event_failed": "事件：72 小时内未成功，不再重试",
        "webhooks_event_no_endpoint": "事件：未发送，没有通知 URL",
        "webhooks_resend_named": "重新发送 {time} 的 {type} 事件",
        "webhooks_pages": "发送记录分页",
        "webhooks_newest": "最新的尝试",
        "webhooks_older": "更早的尝试",
        "error_invalid_notify_url": "无法调用此 URL：请填写完整的 http 或 https URL，"
        "主机名有效，且不含用户名或密码。",
        "error_notify_url_private": "此 URL 指向私有或保留地址；网关只调用公网地址。",
        "error_no_notify_url": "请先设置通知 URL：测试事件将发送到该地址。",
    },
}
