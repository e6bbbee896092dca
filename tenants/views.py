from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def public_home(request: HttpRequest) -> HttpResponse:
    port = request.get_port()
    return render(
        request,
        "public_home.html",
        {
            "base_domain": settings.TENANT_BASE_DOMAIN,
            # Links to tenant hosts keep the port the visitor used (8000 under `make run`).
            "port_suffix": "" if port in ("80", "443") else f":{port}",
        },
    )
