use std::collections::HashMap;
use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::dev::{DevKey, TokenSpec};
use super::*;

fn testdata(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/auth/testdata")
        .join(file)
        .display()
        .to_string()
}

fn auth(pairs: &[(&str, &str)]) -> Result<Auth, ConfigError> {
    let mut map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("NEWSROOM_GRPC_ADDR".into())
        .or_insert("0.0.0.0:50053".into());
    let env = Env::from_fn(|k| map.get(k).cloned());
    let platform = PlatformConfig::from_env(&env, "recommendation", 50053).unwrap();
    Auth::from_env(&env, &platform)
}

fn md(credential: Option<&str>) -> MetadataMap {
    let mut m = MetadataMap::new();
    if let Some(t) = credential {
        m.insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    m
}

/// An `enforce` service trusting a freshly made Ed25519 key, and that key.
fn enforced_with_dev_key(dir: &Path) -> (Auth, DevKey) {
    let key = DevKey::load_or_create(dir).unwrap();
    let jwks = dir.join(dev::JWKS_FILE).display().to_string();
    let a = auth(&[
        (NEWSROOM_AUTH_JWKS, &jwks),
        (NEWSROOM_AUTH_ISSUER, dev::ISSUER),
        (NEWSROOM_AUTH_AUDIENCE, dev::AUDIENCE),
    ])
    .unwrap();
    (a, key)
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("newsroom-auth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test]
async fn a_reader_token_acts_only_for_its_reader() {
    let (a, key) = enforced_with_dev_key(&tempdir("reader"));
    assert_eq!(a.mode(), AuthMode::Enforce);
    let alice = key.mint(&TokenSpec::new("alice", &[]));
    assert_eq!(
        a.reader(&md(Some(&alice)), "", "GetFeed").await.unwrap(),
        "alice"
    );
    assert_eq!(
        a.reader(&md(Some(&alice)), "alice", "GetFeed")
            .await
            .unwrap(),
        "alice"
    );
    let e = a
        .reader(&md(Some(&alice)), "bob", "GetFeed")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    // A reader is not an editor.
    let e = a
        .require(&md(Some(&alice)), &[Role::Editor])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.message().contains("editor"), "{}", e.message());
    // No credential at all.
    let e = a.reader(&md(None), "alice", "GetFeed").await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn the_service_role_acts_for_the_reader_it_names_and_an_editor_does_not() {
    let (a, key) = enforced_with_dev_key(&tempdir("service"));
    let backend = key.mint(&TokenSpec::new("web-backend", &["service"]));
    assert_eq!(
        a.reader(&md(Some(&backend)), " bob ", "Follow")
            .await
            .unwrap(),
        "bob"
    );
    let editor = key.mint(&TokenSpec::new("ed", &["editor"]));
    let e = a
        .reader(&md(Some(&editor)), "bob", "Follow")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let p = a
        .require(&md(Some(&editor)), &[Role::Editor])
        .await
        .unwrap();
    assert_eq!(p.subject, "ed");
    assert!(p.has(Role::Editor) && !p.has(Role::Reader));
}

#[tokio::test]
async fn foreign_misaddressed_and_symmetric_tokens_are_unauthenticated_and_never_echoed() {
    let (a, key) = enforced_with_dev_key(&tempdir("bad"));
    let other = DevKey::generate().unwrap();
    let mut wrong_aud = TokenSpec::new("alice", &[]);
    wrong_aud.audience = "someone-else".into();
    let mut wrong_iss = TokenSpec::new("alice", &[]);
    wrong_iss.issuer = "https://evil.example".into();
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"iss": dev::ISSUER, "aud": dev::AUDIENCE, "sub": "alice", "exp": 4_000_000_000u64}),
        &EncodingKey::from_secret(b"a-shared-secret-that-is-refused"),
    )
    .unwrap();
    for (what, token) in [
        ("foreign key", other.mint(&TokenSpec::new("alice", &[]))),
        ("audience", key.mint(&wrong_aud)),
        ("issuer", key.mint(&wrong_iss)),
        ("hs256", hs256),
        ("garbage", "eyJhbGciOi.x.y".to_owned()),
    ] {
        let e = a
            .reader(&md(Some(&token)), "", "GetFeed")
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{what}: {e:?}");
        assert!(!e.message().contains(&token), "{what}");
    }
}

#[tokio::test]
async fn rs256_and_es256_verify_and_an_expired_or_confused_token_does_not() {
    // RS256 and ES256 from the test fixtures, one expired a day ago.
    let a = auth(&[
        (NEWSROOM_AUTH_JWKS, &testdata("jwks.json")),
        (NEWSROOM_AUTH_ISSUER, "https://id.example"),
        (NEWSROOM_AUTH_AUDIENCE, "newsroom-api"),
    ])
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |alg: Algorithm, kid: &str, pem: &str, exp: u64, sub: &str| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        let bytes = std::fs::read(testdata(pem)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&bytes).unwrap(),
            _ => EncodingKey::from_ec_pem(&bytes).unwrap(),
        };
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"iss": "https://id.example", "aud": "newsroom-api", "sub": sub, "exp": exp}),
            &key,
        )
        .unwrap()
    };
    let rs = sign(Algorithm::RS256, "test-rsa", "rsa.pem", now + 600, "rita");
    assert_eq!(
        a.reader(&md(Some(&rs)), "", "GetFeed").await.unwrap(),
        "rita"
    );
    let es = sign(Algorithm::ES256, "test-ec", "ec.pem", now + 600, "eve");
    assert_eq!(
        a.reader(&md(Some(&es)), "", "GetFeed").await.unwrap(),
        "eve"
    );
    let expired = sign(Algorithm::ES256, "test-ec", "ec.pem", now - 86_400, "eve");
    let e = a
        .reader(&md(Some(&expired)), "", "GetFeed")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(e.message().contains("expired"), "{}", e.message());
    // A token claiming RS256 but naming the EC key does not verify.
    let confused = sign(Algorithm::RS256, "test-ec", "rsa.pem", now + 600, "eve");
    let e = a
        .reader(&md(Some(&confused)), "", "GetFeed")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn a_key_rotated_in_after_start_is_picked_up() {
    let dir = tempdir("rotate");
    let (a, _first) = enforced_with_dev_key(&dir);
    // Rotation: a new key replaces the JWKS file while the service runs.
    std::fs::remove_file(dir.join(dev::KEY_FILE)).unwrap();
    std::fs::remove_file(dir.join(dev::JWKS_FILE)).unwrap();
    let second = DevKey::load_or_create(&dir).unwrap();
    let token = second.mint(&TokenSpec::new("alice", &[]));
    // Unknown key ids re-read the JWKS at most every 2 s.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        a.reader(&md(Some(&token)), "", "GetFeed").await.unwrap(),
        "alice"
    );
}

#[tokio::test]
async fn static_tokens_carry_back_office_roles() {
    let editor = "editor-token-0123456789";
    let service = "service-token-0123456789";
    let hashed = hex::encode(Sha256::digest(service.as_bytes()));
    let a = auth(&[(
        NEWSROOM_AUTH_TOKENS,
        &format!("editor:{editor},service:sha256:{hashed}"),
    )])
    .unwrap();
    let p = a.require(&md(Some(editor)), &[Role::Editor]).await.unwrap();
    assert_eq!(p.via, Via::Token);
    assert!(!p.subject.contains(editor));
    let e = a
        .require(&md(Some(service)), &[Role::Editor])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        a.reader(&md(Some(service)), "bob", "Follow").await.unwrap(),
        "bob"
    );
    let e = a
        .require(&md(Some("wrong-token-0123456789")), &[Role::Editor])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert!(!e.message().contains("wrong-token"));
    assert!(!format!("{a:?}").contains(editor));
}

#[test]
fn configuration_errors_name_the_variable_and_echo_no_secret() {
    let err = auth(&[]).unwrap_err().to_string();
    assert!(err.starts_with(NEWSROOM_AUTH_JWKS), "{err}");
    let err = auth(&[(NEWSROOM_AUTH_MODE, "local")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(NEWSROOM_AUTH_MODE) && err.contains("non-loopback"),
        "{err}"
    );
    let err = auth(&[(NEWSROOM_AUTH_TOKENS, "admin:supersecret-supersecret")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("supersecret"), "{err}");
    let err = auth(&[(NEWSROOM_AUTH_TOKENS, "reader:supersecret-supersecret")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("JWT"), "{err}");
    let err = auth(&[(NEWSROOM_AUTH_JWKS, &testdata("jwks.json"))])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(NEWSROOM_AUTH_ISSUER), "{err}");
    let err = auth(&[
        (NEWSROOM_AUTH_JWKS, "/nonexistent/jwks.json"),
        (NEWSROOM_AUTH_ISSUER, "i"),
        (NEWSROOM_AUTH_AUDIENCE, "a"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.starts_with(NEWSROOM_AUTH_JWKS), "{err}");
}

#[tokio::test]
async fn on_loopback_no_credential_is_the_local_developer_and_dev_tokens_work() {
    let dir = tempdir("local");
    let d = dir.display().to_string();
    let a = auth(&[
        ("NEWSROOM_GRPC_ADDR", "127.0.0.1:50053"),
        (dev::NEWSROOM_DEV_AUTH_DIR, &d),
    ])
    .unwrap();
    assert_eq!(a.mode(), AuthMode::Local);
    assert_eq!(
        a.reader(&md(None), "anyone", "GetFeed").await.unwrap(),
        "anyone"
    );
    assert!(a.require(&md(None), &[Role::Editor]).await.is_ok());
    // The key is made after the service started (as `newsroom token` does).
    let key = DevKey::load_or_create(&dir).unwrap();
    let alice = key.mint(&TokenSpec::new("alice", &[]));
    let e = a
        .reader(&md(Some(&alice)), "bob", "GetFeed")
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        a.require(&md(Some(LOCAL_EDITOR_TOKEN)), &[Role::Editor])
            .await
            .is_ok()
    );
    let e = a
        .require(&md(Some("nope")), &[Role::Editor])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}
