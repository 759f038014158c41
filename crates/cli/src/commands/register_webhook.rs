//! `newsroom register-webhook`: a webhook device for a user (a phone, for notification).

use newsroom_proto::v1::{Channel, Device, RegisterDeviceRequest};

use super::print_json;
use crate::globals::Notification;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    user: String,
    #[arg(long)]
    device: String,
    #[arg(long)]
    url: String,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let Args { user, device, url } = args;
    let mut notif = globals.notification_client().await?;
    register(&mut notif, &user, &device, &url).await?;
    if globals.json() {
        print_json(&serde_json::json!({
            "user_id": user, "device_id": device, "channel": "webhook", "address": url,
        }));
    } else {
        println!("registered {device} for {user} → {url}");
    }
    Ok(())
}

/// Registers `url` as the user's webhook device; `demo` registers its phone with it too.
pub(crate) async fn register(
    notif: &mut Notification,
    user: &str,
    device: &str,
    url: &str,
) -> Result<(), Error> {
    notif
        .register_device(RegisterDeviceRequest {
            device: Some(Device {
                device_id: device.to_owned(),
                user_id: user.to_owned(),
                channel: Channel::Webhook as i32,
                address: url.to_owned(),
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}
