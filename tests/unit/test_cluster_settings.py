"""Settings of a clustered deployment: several NATS URLs, replicas, the health port."""

from __future__ import annotations

from shared.settings import load_settings


def test_a_comma_separated_nats_url_is_a_list_of_servers() -> None:
    s = load_settings({"SHOEBOX_NATS_URL": "nats://a:4222, nats://b:4222,,nats://c:4222"})
    assert s.nats.servers == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    assert not s.nats.embedded
    assert load_settings({}).nats.servers == ["nats://127.0.0.1:4222"]


def test_replicas_default_to_automatic_and_are_capped_at_five() -> None:
    assert load_settings({}).nats.replicas == 0
    assert load_settings({"SHOEBOX_NATS_REPLICAS": "3"}).nats.replicas == 3
    assert load_settings({"SHOEBOX_NATS_REPLICAS": "9"}).nats.replicas == 5


def test_the_health_port_defaults_to_8081_and_0_means_none() -> None:
    assert load_settings({}).health_port == 8081
    assert load_settings({"SHOEBOX_HEALTH_PORT": "0"}).health_port == 0
