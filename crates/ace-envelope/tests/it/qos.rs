//! `contracts/comms/qos.yaml` and [`Qos`] name the same classes, and the lifetime a class gives
//! a message that names none is the contract's where the envelope applies one.

use ace_envelope::{Qos, REALTIME_DEFAULT_TTL_MS};

const QOS: &str = include_str!("../../../../contracts/comms/qos.yaml");

#[test]
fn given_the_qos_contract_when_read_then_its_classes_are_the_enum_and_realtime_keeps_its_ttl() {
    let contract: serde_yaml_ng::Value = serde_yaml_ng::from_str(QOS).expect("qos.yaml parses");
    let classes = contract["classes"].as_mapping().expect("a classes map");
    let mut named: Vec<&str> = classes.keys().filter_map(|k| k.as_str()).collect();
    named.sort_unstable();
    let mut ours: Vec<&str> = Qos::ALL.iter().map(|q| q.as_str()).collect();
    ours.sort_unstable();
    assert_eq!(named, ours);
    let ttl = |class: Qos| contract["classes"][class.as_str()]["default_ttl_ms"].as_u64();
    assert_eq!(ttl(Qos::Realtime), Some(REALTIME_DEFAULT_TTL_MS));
    assert_eq!(Qos::Realtime.default_ttl_ms(), ttl(Qos::Realtime));
    // `standard` and `bulk` are bounded by their stream's retention instead: their contract
    // lifetimes (a day, a week) are not applied to the envelope.
    for class in [Qos::Standard, Qos::Bulk] {
        assert!(ttl(class).is_some(), "{class:?} has a contract lifetime");
        assert_eq!(class.default_ttl_ms(), None, "{class:?}");
    }
}
