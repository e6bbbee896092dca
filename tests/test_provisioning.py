"""Provisioning as one unit, under failure and under concurrency, with real commits.

These tests carry no django_db mark: a test transaction would hide what other
connections see. ``committed_db`` drops whatever tenants they list.
"""

import threading

import pytest
from django.db import connection

from tenants import services
from tenants.models import Domain, Tenant
from tests.conftest import JsonClient, schema_exists


def test_failure_half_way_leaves_nothing_behind(staff, monkeypatch, committed_db):
    real_create = services.create_schema

    def create_then_fail(tenant):
        real_create(tenant)
        assert schema_exists(tenant.id)  # the schema really was made before the failure
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "create_schema", create_then_fail)
    committed_db.append("halfway")
    with pytest.raises(RuntimeError):
        services.provision_tenant(tenant_id="halfway", name="Half Way")
    assert not Tenant.objects.filter(pk="halfway").exists()
    assert not Domain.objects.filter(domain="halfway.localhost").exists()
    assert not schema_exists("halfway")


def test_failure_through_the_api_is_json_500_and_leaves_nothing(monkeypatch, committed_db, keys):
    def fail(tenant):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "create_schema", fail)
    client = JsonClient(token=keys.admin, raise_request_exception=False)
    response = client.post("/admin/tenants", {"id": "apifail", "name": "x"})
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error"}
    assert not Tenant.objects.filter(pk="apifail").exists()
    assert not schema_exists("apifail")


def test_domain_conflict_rolls_back_the_tenant(committed_db):
    committed_db.append("conflicted")
    Domain.objects.create(domain="conflicted.localhost", tenant_id="acme", is_primary=False)
    try:
        with pytest.raises(services.TenantAlreadyExists):
            services.provision_tenant(tenant_id="conflicted", name="C")
        assert not Tenant.objects.filter(pk="conflicted").exists()
        assert not schema_exists("conflicted")
    finally:
        Domain.objects.filter(domain="conflicted.localhost").delete()


def test_parallel_duplicate_creates_give_exactly_one_201(committed_db, keys):
    committed_db.append("racer")
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def create():
        from django.db import connections

        client = JsonClient(token=keys.admin)
        barrier.wait()
        statuses.append(client.post("/admin/tenants", {"id": "racer", "name": "Racer"}).status_code)
        connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 7
    assert Tenant.objects.filter(pk="racer").count() == 1
    assert schema_exists("racer")
    connection.set_schema_to_public()
