"""The Overview page (overview_pages.py): orders needing attention and what was received."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "overview_title": "Overview",
        "overview_intro": "What your customers paid, and the orders that need you. Days are UTC "
        "days.",
        "overview_orders_title": "Orders",
        "overview_pending": "waiting for payment",
        "overview_confirming": "paid, confirming",
        "overview_exceptional": "with an exception to look at",
        "overview_exception_underpaid": "{count} underpaid",
        "overview_exception_overpaid": "{count} overpaid",
        "overview_exception_paid_late": "{count} paid late",
        "overview_exception_manual": "{count} completed by the operator",
        "overview_exception_reversed_after_completion": "{count} reversed after completion",
        "overview_exception_wrong_token": "{count} with a wrong token",
        "overview_received_title": "Received",
        "overview_col_token": "Token",
        "overview_col_today": "Today",
        "overview_col_week": "Last 7 days",
        "overview_col_month": "Last 30 days",
        "overview_col_day": "Day",
        "overview_token_on": "{symbol} on {chain}",
        "overview_received_hint": "Confirmed payments credited to your orders, by the time "
        "of their block.",
        "overview_nothing_received": "Nothing received in the last 30 days.",
        "overview_chart_title": "Daily volume, last 30 days",
        "overview_chart_peak": "(busiest day: {amount} {symbol})",
        "overview_chart_label": "Daily volume of {name} over 30 days, {total} {symbol} in all. "
        "The table below has each day's amount.",
        "overview_chart_table": "Each day's amount",
    },
    "zh-CN": {
        "overview_title": "概览",
        "overview_intro": "客户已支付的金额，以及需要您处理的订单。日期按 UTC 计算。",
        "overview_orders_title": "订单",
        "overview_pending": "等待付款",
        "overview_confirming": "已付款，确认中",
        "overview_exceptional": "有异常待查看",
        "overview_exception_underpaid": "{count} 个少付",
        "overview_exception_overpaid": "{count} 个多付",
        "overview_exception_paid_late": "{count} 个逾期付款",
        "overview_exception_manual": "{count} 个由运营方完成",
        "overview_exception_reversed_after_completion": "{count} 个完成后被撤回",
        "overview_exception_wrong_token": "{count} 个收到错误代币",
        "overview_received_title": "已收款",
        "overview_col_token": "代币",
        "overview_col_today": "今天",
        "overview_col_week": "最近 7 天",
        "overview_col_month": "最近 30 天",
        "overview_col_day": "日期",
        "overview_token_on": "{chain} 上的 {symbol}",
        "overview_received_hint": "已确认并计入订单的付款，按区块时间统计。",
        "overview_nothing_received": "最近 30 天没有收款。",
        "overview_chart_title": "每日交易额（最近 30 天）",
        "overview_chart_peak": "（最高一天：{amount} {symbol}）",
        "overview_chart_label": "{name} 最近 30 天的每日交易额，共 {total} {symbol}。"
        "下方表格列出每天的金额。",
        "overview_chart_table": "每天的金额",
    },
}
