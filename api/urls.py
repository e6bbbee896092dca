from config.routing import route

from api import views

urlpatterns = [
    route(r"api/me", views.TenantProfileView.as_view(), name="api-me"),
]
