//! What an attacker tries through the public API: a webhook device pointing at the cloud's
//! metadata service, at Redis on loopback, at a name that resolves to loopback — each refused
//! at registration with `INVALID_ARGUMENT` naming `device.address` (the platform's outbound
//! guard, which the webhook channel also applies at every connection, redirects never
//! followed).

use newsroom_e2e::{Pipeline, Service};
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{Channel, Device, RegisterDeviceRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_device_cannot_point_at_an_internal_address() {
    // As on a public address: the guard on (the tests' loopback default lifts it).
    let pipeline = Pipeline::start_with(
        &[Service::Notification],
        &[("NEWSROOM_WEBHOOK_ALLOW_PRIVATE", "false")],
    )
    .await;
    let mut notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let register = |address: &str| RegisterDeviceRequest {
        device: Some(Device {
            device_id: "attacker-phone".into(),
            user_id: "attacker".into(),
            channel: Channel::Webhook as i32,
            address: address.into(),
            ..Default::default()
        }),
    };
    for address in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:6379/",
        "http://10.0.0.5/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://localhost:6379/",
    ] {
        let status = notif
            .register_device(register(address))
            .await
            .expect_err(address);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{address}: {status:?}"
        );
        assert!(
            status.message().contains("device.address"),
            "{address}: {}",
            status.message()
        );
    }
    pipeline.stop().await;
}
