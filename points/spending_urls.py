"""Pages of spending, in three namespaces included from ``config.urls``: the storefront's
(``spending``, before the storefront's own catch-all), the dashboard's
(``dashboard_spending``, under ``/dashboard/``) and the console's (``console_spending``,
under ``/console/``)."""

from django.urls import path, register_converter

from . import spending_views as views


class DatabaseIdConverter:
    """A primary key PostgreSQL's bigint can hold: a longer number is "not found" at the
    router instead of an out-of-range error from the database."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseIdConverter, "dbid")

storefront_patterns = ([
    path("catalog/", views.catalog_list, name="catalog"),
    path("catalog/<dbid:item_id>/", views.catalog_detail, name="catalog-detail"),
    path("catalog/<dbid:item_id>/image", views.catalog_image, name="catalog-image"),
    path("vouchers/", views.voucher_list, name="vouchers"),
    path("vouchers/<str:code>/", views.voucher_detail, name="voucher-detail"),
    path("vouchers/<str:code>/cancel/", views.voucher_cancel, name="voucher-cancel"),
    path("exchange/", views.exchange_page, name="exchange"),
    path("exchange/quote/", views.exchange_quote, name="exchange-quote"),
    path("lotteries/", views.lottery_list, name="lotteries"),
    path("lotteries/<dbid:campaign_id>/", views.lottery_detail, name="lottery-detail"),
    path("lotteries/<dbid:campaign_id>/fairness/", views.lottery_fairness,
         name="lottery-fairness"),
], "spending")

dashboard_patterns = ([
    path("catalog/", views.dashboard_catalog, name="catalog"),
    path("catalog/new/", views.dashboard_catalog_edit, name="catalog-new"),
    path("catalog/<dbid:item_id>/", views.dashboard_catalog_edit, name="catalog-edit"),
    path("vouchers/", views.dashboard_vouchers, name="vouchers"),
    path("exchange/", views.dashboard_exchange, name="exchange"),
    path("lotteries/", views.dashboard_lotteries, name="lotteries"),
    path("lotteries/<dbid:campaign_id>/", views.dashboard_lottery, name="lottery"),
    path("lotteries/<dbid:campaign_id>/<str:action>/", views.dashboard_lottery_action,
         name="lottery-action"),
], "dashboard_spending")

console_patterns = ([
    path("exchange/", views.console_exchange_matrix, name="exchange-matrix"),
], "console_spending")
