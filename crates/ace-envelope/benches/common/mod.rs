//! Sample messages shaped as the Leyline benchmark conditions; shared by the criterion benches
//! and the integration tests (`tests/it/leyline.rs` includes this file), so both measure and
//! check the same messages.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use ace_envelope::leyline as pb;
use ace_envelope::{Envelope, Kind, ManualClock, Priority, SourceType};

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds,
        nanos: 250_000_000,
    })
}

/// `SystemStatePacket` "10 seeds, 5 metrics": five training metrics, ten seeds.
pub fn system_state_packet() -> pb::SystemStatePacket {
    let metric_names = ["loss", "accuracy", "grad_norm", "lr", "throughput"];
    let training_metrics: BTreeMap<String, f32> = metric_names
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), 0.5 + i as f32))
        .collect();
    let seed_states = (0..10u32)
        .map(|i| pb::SeedState {
            seed_id: format!("seed-{i:02}"),
            stage: pb::SeedLifecycleStage::SeedStageTraining as i32,
            gradient_norm: 0.01 * i as f32,
            learning_rate: 3e-4,
            layer_depth: i,
            metrics: BTreeMap::new(),
            age_epochs: i * 2,
            risk_score: 0.1,
        })
        .collect();
    pb::SystemStatePacket {
        version: 1,
        current_epoch: 42,
        validation_accuracy: 0.913,
        validation_loss: 0.281,
        timestamp_ns: 1_767_225_600_000_000_000,
        hardware_context: Some(pb::HardwareContext {
            device_type: "cuda".to_owned(),
            device_id: "0".to_owned(),
            total_memory_gb: 80.0,
            available_memory_gb: 31.5,
            temperature_celsius: Some(64.0),
            utilization_percent: 97.0,
            compute_capability: 90,
        }),
        training_metrics,
        seed_states,
        packet_id: "0192f5c6-8d7e-7a10-9b2c-3d4e5f607182".to_owned(),
        global_step: 123_456,
        training_loss: 0.301,
        source_subsystem: "tolaria".to_owned(),
        training_run_id: "run-7".to_owned(),
        experiment_name: "resnet-morph".to_owned(),
    }
}

/// `AdaptationCommand` "single command": one seed germination with constraints.
pub fn adaptation_command() -> pb::AdaptationCommand {
    pb::AdaptationCommand {
        version: 1,
        command_id: "0192f5c6-8d7e-7a10-9b2c-3d4e5f607183".to_owned(),
        target_seed_id: "seed-03".to_owned(),
        issued_at: timestamp(1_767_225_600),
        issued_by: "tamiyo".to_owned(),
        command: Some(pb::adaptation_command::Command::SeedOperation(
            pb::SeedOperation {
                operation: pb::SeedOperationType::SeedOperationGerminate as i32,
                blueprint_id: "conv3x3-residual".to_owned(),
                parameters: BTreeMap::from([
                    ("alpha".to_owned(), 0.1),
                    ("blend_steps".to_owned(), 500.0),
                ]),
                target_layer: 7,
            },
        )),
        execution_deadline: Some(prost_types::Duration {
            seconds: 2,
            nanos: 0,
        }),
        max_retries: 3,
        requires_confirmation: false,
        priority: pb::MessagePriority::High as i32,
        metadata: BTreeMap::from([("reason".to_owned(), "plateau".to_owned())]),
        correlation_id: "corr-1".to_owned(),
    }
}

/// Leyline `EventEnvelope` "200-byte payload".
pub fn event_envelope() -> pb::EventEnvelope {
    pb::EventEnvelope {
        event_id: "0192f5c6-8d7e-7a10-9b2c-3d4e5f607184".to_owned(),
        event_type: "SeedGerminated".to_owned(),
        source_subsystem: "kasmina".to_owned(),
        created_at: timestamp(1_767_225_600),
        processing_deadline: Some(prost_types::Duration {
            seconds: 0,
            nanos: 50_000_000,
        }),
        ttl: Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        payload: vec![0xAB; 200],
        payload_type: "leyline.SeedState".to_owned(),
        content_encoding: "protobuf".to_owned(),
        priority: pb::MessagePriority::Normal as i32,
        routing_keys: vec!["esper.seed.germinated".to_owned()],
        correlation_id: "corr-2".to_owned(),
        delivery_guarantee: pb::DeliveryGuarantee::AtLeastOnce as i32,
        max_attempts: 5,
        current_attempt: 1,
    }
}

/// `StructuralPruningRequest` "full importance stats": 12 layers of 64 channel and 8 head
/// importances, a full configuration and safety constraints.
pub fn structural_pruning_request() -> pb::StructuralPruningRequest {
    let layers = (0..12)
        .map(|l| {
            let importance = pb::LayerImportance {
                channel_importance: (0..64).map(|c| (l * 64 + c) as f32 / 768.0).collect(),
                head_importance: (0..8).map(|h| h as f32 / 8.0).collect(),
                layer_importance: l as f32 / 12.0,
            };
            (format!("encoder.layer.{l}"), importance)
        })
        .collect();
    pb::StructuralPruningRequest {
        request_id: "0192f5c6-8d7e-7a10-9b2c-3d4e5f607185".to_owned(),
        checkpoint_id: "ckpt-42".to_owned(),
        epoch: 42,
        phase: pb::PruningPhase::Analysis as i32,
        importance_stats: Some(pb::ImportanceStatistics {
            layers,
            samples_collected: 4096,
            gradient_norm_mean: 0.12,
            gradient_norm_std: 0.03,
            collection_method: "taylor".to_owned(),
            collection_steps: 200,
        }),
        config: Some(pb::PruningConfiguration {
            strategy: pb::PruningStrategy::Taylor as i32,
            target_sparsity: 0.3,
            max_accuracy_drop: 0.01,
            min_channels_per_layer: 8,
            protected_layers: vec!["encoder.layer.0".to_owned(), "head".to_owned()],
            structured: true,
        }),
        safety_constraints: BTreeMap::from([
            ("max_accuracy_drop".to_owned(), 0.01),
            ("max_latency_increase".to_owned(), 0.0),
        ]),
        created_at: timestamp(1_767_225_600),
        source_subsystem: "emrakul".to_owned(),
        timeout: Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        }),
    }
}

/// A typical gme/1 event: 200-byte JSON payload, source, name, trace, a header.
pub fn gme_event() -> Envelope {
    let clock = ManualClock::fixed();
    Envelope::builder(
        Kind::Event,
        "ace.comms.internal.service.kasmina.evt.seed_germinated.v1",
    )
    .clock(&clock)
    .name("SEED_GERMINATED")
    .domain("esper")
    .source(SourceType::Service, "kasmina")
    .schema("esper.seed_state@1.0.0")
    .payload_json(serde_json::json!({"seed_id": "seed-03", "note": "x".repeat(160)}))
    .priority(Priority::P1)
    .correlation_id("corr-3")
    .new_trace()
    .header("tenant", "acme")
    .build()
    .expect("the sample envelope is valid")
}
