//! Verifying long chains cannot starve the server: each page is a short transaction, at
//! most one verification per tenant and a few per replica run at once (the rest are told
//! to retry), other tenants' audited calls go on meanwhile, and a check can start at the
//! newest signed checkpoint (API and CLI).

use codexcontinue::{
    audit::{self, CheckpointJob},
    pb::v1::{
        VerifyChainRequest, WhoAmIRequest, audit_service_client::AuditServiceClient,
        auth_service_client::AuthServiceClient,
    },
    tenancy::TenantId,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestEnv, TestServer, bench::stores, grpc::authorized,
    server::command,
};
use tonic::Code;

use super::audit::{event, tamper};

/// Events in acme's chain: long enough that a verification holding one connection for
/// its whole run (as it once did) keeps it for a while.
const EVENTS: usize = 20_000;

#[tokio::test]
async fn concurrent_verifications_leave_the_pool_to_everyone_else() {
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![("CODEXCONTINUE_DATABASE__MAX_CONNECTIONS".into(), "4".into())],
            redis_url: None,
        },
    )
    .await;
    let globex = server.add_tenant("globex").await;
    let (database, _) = stores(&server.db).await;
    let acme: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut server.db.owner().await)
        .await
        .unwrap();
    let acme = TenantId(acme);
    let mut tx = database.begin_tenant(acme).await.unwrap();
    for n in 0..EVENTS {
        audit::append(&mut tx, acme, &event(n)).await.unwrap();
    }
    tx.commit().await.unwrap();

    let channel = server.channel().await;
    let verifications = (0..24).map(|_| {
        let mut trail = AuditServiceClient::new(channel.clone());
        let key = server.owner_key.clone();
        tokio::spawn(async move {
            trail
                .verify_chain(authorized(&key, VerifyChainRequest::default()))
                .await
        })
    });
    let verifications: Vec<_> = verifications.collect();
    let mut auth = AuthServiceClient::new(channel.clone());
    for _ in 0..50 {
        auth.who_am_i(authorized(&globex, WhoAmIRequest {}))
            .await
            .expect("another tenant's calls go on");
    }
    let mut intact = 0;
    for verification in verifications {
        match verification.await.unwrap() {
            Ok(answer) => {
                let answer = answer.into_inner();
                assert!(answer.intact, "{answer:?}");
                intact += 1;
            }
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }
    assert!(intact >= 1);

    // From the newest signed checkpoint: only what came after it is hashed; an edit before
    // it is for the full check to find.
    CheckpointJob::new(database.clone(), TestEnv::get().checkpoint_signer())
        .run_once()
        .await
        .unwrap();
    let mut trail = AuditServiceClient::new(channel);
    let recent = trail
        .verify_chain(authorized(
            &server.owner_key,
            VerifyChainRequest {
                since_checkpoint: true,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(recent.intact, "{recent:?}");
    assert!(recent.events_checked < 100, "{recent:?}");
    tamper(
        &server.db,
        "UPDATE audit_events SET status_code = 7 WHERE seq = 5",
    )
    .await;
    let output = command()
        .args(["audit", "verify", "--tenant", "acme", "--since-checkpoint"])
        .env("DATABASE_URL", &server.db.app_url)
        .env(
            "CODEXCONTINUE_CRYPTO__MASTER_KEY",
            &TestEnv::get().master_key,
        )
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let full = trail
        .verify_chain(authorized(&server.owner_key, VerifyChainRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((full.intact, full.first_broken_seq), (false, 5));
}
