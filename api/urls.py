from api import views
from config.routing import route

urlpatterns = [
    route(r"api/me", views.TenantProfileView.as_view(), name="api-me"),
    route(r"api/auth/token", views.TokenView.as_view(), name="api-token"),
    route(r"api/settings", views.SettingsView.as_view(), name="api-settings"),
    route(r"api/users", views.UserCollectionView.as_view(), name="api-users"),
    route(r"api/users/(?P<user_id>[^/]+)", views.UserDetailView.as_view(), name="api-user"),
    route(r"api/export", views.ExportView.as_view(), name="api-export"),
    route(r"api/events", views.EventsView.as_view(), name="api-events"),
    route(r"api/analytics", views.AnalyticsView.as_view(), name="api-analytics"),
]
