from api import views
from config.routing import route

urlpatterns = [
    route(r"api/me", views.TenantProfileView.as_view(), name="api-me"),
]
