//! Costs of the decisions on the publish path: a full authorization (RBAC -> Rego -> EHI)
//! with a warm decision cache (the input document streamed into SHA-256, one lookup), RBAC
//! alone, one cold Rego evaluation of the shipped policy, and JWT verification per algorithm
//! (keys from `tests/fixtures/`), uncached and through the `TokenCache` the server uses.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use ace_envelope::{Envelope, Kind, SourceType};
use ace_policy::{
    Action, DEFAULT_TOKEN_CACHE_CAPACITY, EhiConfig, JwtAlgorithm, PolicyEngine, Principal,
    TokenCache, TokenVerifier, policy_input,
};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(dir("tests/fixtures").join(name)).expect("fixture")
}

fn setup() -> (PolicyEngine, Principal, Envelope) {
    let engine =
        PolicyEngine::load(&dir("../../policies"), EhiConfig::default()).expect("policies");
    let agent = Principal::new("agent-7", SourceType::Agent, vec!["agent".into()], 1).expect("p");
    let env = Envelope::builder(Kind::Command, "ace.comms.a2a.agent.b7.cmd.v1")
        .header("ace-action", "deploy")
        .ehi_score(0.3)
        .build_unchecked();
    (engine, agent, env)
}

fn authorization(c: &mut Criterion) {
    let (engine, agent, env) = setup();
    let subject = env.subject.clone();
    c.bench_function("authorize_publish_warm_cache", |b| {
        b.iter(|| engine.authorize(&agent, Action::Publish, &subject, Some(&env)))
    });
    c.bench_function("rbac_only", |b| {
        b.iter(|| engine.rbac().authorize(&agent, Action::Publish, &subject))
    });
    let input = policy_input(&agent, Action::Publish, &subject, Some(&env));
    let rego = engine.rego().expect("shipped policy");
    c.bench_function("rego_cold_evaluation", |b| {
        b.iter(|| rego.evaluate_uncached(&input).expect("evaluates"))
    });
}

fn jwt(c: &mut Criterion) {
    let secret = b"0123456789abcdef0123456789abcdef-bench-only";
    let mut verifier = TokenVerifier::new(Some("ace-auth".into()), Some("ace-comms".into()));
    verifier
        .add_pem(
            Some("rs".into()),
            JwtAlgorithm::RS256,
            &fixture("rsa.pub.pem"),
        )
        .expect("rs");
    verifier
        .add_pem(
            Some("es".into()),
            JwtAlgorithm::ES256,
            &fixture("ec.pub.pem"),
        )
        .expect("es");
    verifier
        .add_pem(
            Some("ed".into()),
            JwtAlgorithm::EdDSA,
            &fixture("ed.pub.pem"),
        )
        .expect("ed");
    verifier
        .add_hmac_secret(Some("hs".into()), secret)
        .expect("hs");
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    let claims = serde_json::json!({"sub": "agent-7", "iss": "ace-auth", "aud": "ace-comms",
        "exp": exp, "iat": exp - 3600, "roles": ["agent"], "clearance": 1, "principal_type": "agent"});
    let keys = [
        (
            Algorithm::RS256,
            "rs",
            EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")),
        ),
        (
            Algorithm::ES256,
            "es",
            EncodingKey::from_ec_pem(&fixture("ec.key.pem")),
        ),
        (
            Algorithm::EdDSA,
            "ed",
            EncodingKey::from_ed_pem(&fixture("ed.key.pem")),
        ),
        (Algorithm::HS256, "hs", Ok(EncodingKey::from_secret(secret))),
    ];
    let cache = TokenCache::new(verifier.clone(), DEFAULT_TOKEN_CACHE_CAPACITY);
    let now = exp - 3600;
    let mut group = c.benchmark_group("jwt_verify");
    for (alg, kid, key) in keys {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(&header, &claims, &key.expect("key")).expect("sign");
        group.bench_function(format!("{alg:?}"), |b| {
            b.iter(|| verifier.verify(&token).expect("valid"))
        });
        // What the server pays per request once the token verified: a SHA-256 and a lookup.
        group.bench_function(format!("{alg:?}_cached"), |b| {
            b.iter(|| cache.verify(&token, now).expect("valid"))
        });
    }
    group.finish();
}

criterion_group!(benches, authorization, jwt);
criterion_main!(benches);
