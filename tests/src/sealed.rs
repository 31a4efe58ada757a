//! Rows with sealed values written the way the server writes them, for tests and
//! benchmarks of key rotation: a conversation of a user with sealed messages.

use codexcontinue::{crypto::Sealer, store::Database, tenancy::TenantId};
use uuid::Uuid;

/// Writes a conversation of `user` in `tenant` with `count` user messages (`message {n}`),
/// `batch` per transaction, sealed with the tenant's current data key. Returns the
/// messages' ids in order.
///
/// # Panics
/// When Postgres refuses.
pub async fn conversation_with_messages(
    database: &Database,
    sealer: &Sealer,
    (tenant, user): (TenantId, Uuid),
    count: usize,
    batch: usize,
) -> Vec<Uuid> {
    let conversation = Uuid::now_v7();
    let mut tx = database.begin_tenant(tenant).await.expect("begin");
    let title = sealer
        .seal(
            &mut tx,
            tenant,
            "conversations",
            &conversation.to_string(),
            b"title",
        )
        .await
        .expect("seal the title");
    sqlx::query(
        "INSERT INTO conversations (tenant_id, id, user_id, title_sealed, profile)
         VALUES ($1, $2, $3, $4, 'general')",
    )
    .bind(tenant.0)
    .bind(conversation)
    .bind(user)
    .bind(title)
    .execute(&mut *tx)
    .await
    .expect("conversation");
    tx.commit().await.expect("commit");
    let mut all = Vec::with_capacity(count);
    for first in (0..count).step_by(batch.max(1)) {
        let mut tx = database.begin_tenant(tenant).await.expect("begin");
        let mut keyring = sealer.keyring(tenant);
        let mut ids = Vec::new();
        let mut sealed = Vec::new();
        for n in first..count.min(first + batch.max(1)) {
            let id = Uuid::now_v7();
            sealed.push(
                keyring
                    .seal(
                        &mut tx,
                        "messages",
                        &id.to_string(),
                        format!("message {n}").as_bytes(),
                    )
                    .await
                    .expect("seal"),
            );
            ids.push(id);
        }
        sqlx::query(
            "INSERT INTO messages (tenant_id, id, conversation_id, role, content_sealed)
             SELECT $1, id, $2, 'user', content
             FROM unnest($3::uuid[], $4::bytea[]) AS t(id, content)",
        )
        .bind(tenant.0)
        .bind(conversation)
        .bind(&ids)
        .bind(&sealed)
        .execute(&mut *tx)
        .await
        .expect("messages");
        tx.commit().await.expect("commit");
        all.extend(ids);
    }
    all
}
