//! `newsroom.v1.NotificationService`.

use std::pin::Pin;

use newsroom_platform::kafka::Producer;
use newsroom_proto::Message as _;
use newsroom_proto::v1::audience::Target;
use newsroom_proto::v1::notification_service_server::NotificationService;
use newsroom_proto::v1::{
    Alert, AlertStatus, Channel, Device, GetAlertRequest, Preferences, RegisterDeviceRequest,
    SendAlertRequest, StreamAlertsRequest, UnregisterDeviceRequest, UnregisterDeviceResponse,
    UpdatePreferencesRequest,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::fanout::Fanout;

pub struct NotificationApi {
    fanout: Fanout,
    producer: Producer,
    devices_topic: String,
}

impl NotificationApi {
    pub fn new(fanout: Fanout, producer: Producer, devices_topic: String) -> Self {
        NotificationApi {
            fanout,
            producer,
            devices_topic,
        }
    }
}

fn unavailable(e: newsroom_platform::redis::redis::RedisError) -> Status {
    Status::unavailable(format!("alert store unavailable: {e}"))
}

/// Validates a device at the edge.
fn validate_device(device: Option<Device>) -> Result<Device, Status> {
    let mut d = device.ok_or_else(|| Status::invalid_argument("device: required"))?;
    d.device_id = d.device_id.trim().to_owned();
    d.user_id = d.user_id.trim().to_owned();
    d.address = d.address.trim().to_owned();
    if d.device_id.is_empty() || d.device_id.len() > 128 {
        return Err(Status::invalid_argument(
            "device.device_id: required, at most 128 bytes",
        ));
    }
    if d.user_id.is_empty() {
        return Err(Status::invalid_argument("device.user_id: required"));
    }
    match Channel::try_from(d.channel) {
        Ok(Channel::Webhook) => {
            let url = reqwest::Url::parse(&d.address).map_err(|e| {
                Status::invalid_argument(format!("device.address: not a URL ({e})"))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Status::invalid_argument(
                    "device.address: a webhook needs an http(s) URL",
                ));
            }
        }
        Ok(Channel::Unspecified) | Err(_) => {
            return Err(Status::invalid_argument(
                "device.channel: one of WEBHOOK, WEB_PUSH, APNS, FCM, IN_APP",
            ));
        }
        Ok(other) => {
            return Err(Status::unimplemented(format!(
                "device.channel: {} is not supported yet; WEBHOOK is",
                other.as_str_name()
            )));
        }
    }
    Ok(d)
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<Alert, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn register_device(
        &self,
        request: Request<RegisterDeviceRequest>,
    ) -> Result<Response<Device>, Status> {
        let device = validate_device(request.into_inner().device)?;
        // Kafka first: the compacted `devices` topic is the record of truth.
        self.producer
            .send(
                &self.devices_topic,
                &device.device_id,
                &device.encode_to_vec(),
            )
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        self.fanout
            .store
            .put_device(&device)
            .await
            .map_err(unavailable)?;
        tracing::info!(device.id = %device.device_id, user.id = %device.user_id, "device registered");
        Ok(Response::new(device))
    }

    async fn unregister_device(
        &self,
        request: Request<UnregisterDeviceRequest>,
    ) -> Result<Response<UnregisterDeviceResponse>, Status> {
        let id = request.into_inner().device_id.trim().to_owned();
        if id.is_empty() {
            return Err(Status::invalid_argument("device_id: required"));
        }
        self.producer
            .send_tombstone(&self.devices_topic, &id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        match self
            .fanout
            .store
            .remove_device(&id)
            .await
            .map_err(unavailable)?
        {
            Some(_) => Ok(Response::new(UnregisterDeviceResponse {})),
            None => Err(Status::not_found(format!("device {id} is not registered"))),
        }
    }

    async fn update_preferences(
        &self,
        _request: Request<UpdatePreferencesRequest>,
    ) -> Result<Response<Preferences>, Status> {
        Err(Status::unimplemented(
            "UpdatePreferences (quiet hours, budgets, language) is not built yet",
        ))
    }

    async fn send_alert(
        &self,
        request: Request<SendAlertRequest>,
    ) -> Result<Response<AlertStatus>, Status> {
        let req = request.into_inner();
        let id = req.story_id.trim();
        if id.is_empty() {
            return Err(Status::invalid_argument("story_id: required"));
        }
        let store = &self.fanout.store;
        if store.is_killed(id).await.map_err(unavailable)? {
            return Err(Status::failed_precondition(format!(
                "story {id} was killed; it is never alerted"
            )));
        }
        let alert =
            store.story(id).await.map_err(unavailable)?.ok_or_else(|| {
                Status::not_found(format!("story {id} has not been enriched yet"))
            })?;
        let devices = match req.audience.and_then(|a| a.target) {
            Some(Target::Everyone(true)) => store.all_devices().await,
            Some(Target::Followers(true)) | None => {
                let users = store.followers(&alert.topics).await.map_err(unavailable)?;
                store.devices_of(&users).await
            }
            Some(Target::Segment(s)) => {
                return Err(Status::unimplemented(format!(
                    "audience.segment: segments are not built yet ({s:?})"
                )));
            }
            Some(_) => {
                return Err(Status::invalid_argument(
                    "audience: set everyone or followers to true, or name a segment",
                ));
            }
        }
        .map_err(unavailable)?;
        self.fanout
            .send(&alert, devices)
            .await
            .map_err(unavailable)?;
        let status = store.status(id).await.map_err(unavailable)?;
        Ok(Response::new(status.unwrap_or(AlertStatus {
            story_id: id.to_owned(),
            ..Default::default()
        })))
    }

    async fn get_alert(
        &self,
        request: Request<GetAlertRequest>,
    ) -> Result<Response<AlertStatus>, Status> {
        let id = request.into_inner().story_id;
        if id.trim().is_empty() {
            return Err(Status::invalid_argument("story_id: required"));
        }
        match self
            .fanout
            .store
            .status(id.trim())
            .await
            .map_err(unavailable)?
        {
            Some(s) => Ok(Response::new(s)),
            None => Err(Status::not_found(format!("story {id} has not alerted"))),
        }
    }

    type StreamAlertsStream = AlertStream;

    async fn stream_alerts(
        &self,
        _request: Request<StreamAlertsRequest>,
    ) -> Result<Response<Self::StreamAlertsStream>, Status> {
        Err(Status::unimplemented(
            "in-app alert streams are not built yet",
        ))
    }
}
