//! `newsroom.v1.NotificationService`: the edge. Every request is authorised (see [`auth`]) and
//! validated into typed values here; errors cross into gRPC statuses in one place.
//!
//! - `RegisterDevice` / `UnregisterDevice` / `UpdatePreferences` write the compacted `devices`
//!   topic first (the record of truth) and then Redis, conditional on the Kafka offset;
//! - `SendAlert` publishes an `AlertRequest` on `notifications.alerts` and answers at once with
//!   the alert's current status: the fan-out runs in the consumer, so a crash mid-way resumes on
//!   redelivery instead of dying with the request;
//! - `GetAlert` reads the counts and times;
//! - `StreamAlerts` streams a user's in-app alerts (Redis pub/sub), after replaying those sent
//!   since `since`.
//!
//! Who may call: `SendAlert` needs the editor role, `GetAlert` editor, service or operator;
//! the reader-facing calls (devices, preferences, in-app streams, acknowledgements) act for the
//! reader of the credential — a reader only for themself and their own devices, the service
//! role for the reader it names (audited).
//!
//! [`auth`]: newsroom_platform::auth

use std::pin::Pin;
use std::time::SystemTime;

use newsroom_platform::auth::{Auth, Role};
use newsroom_platform::kafka::{ProduceError, Producer};

use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::audience::Target;
use newsroom_proto::v1::notification_service_server::NotificationService;
use newsroom_proto::v1::{
    AcknowledgeAlertRequest, AcknowledgeAlertResponse, Alert, AlertRequest, AlertStatus,
    Channel as ChannelKind, Device, GetAlertRequest, GetDeviceRequest, Preferences,
    RegisterDeviceRequest, RetractAlertRequest, SendAlertRequest, StreamAlertsRequest,
    UnregisterDeviceRequest, UnregisterDeviceResponse, UpdatePreferencesRequest,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::decision::{self, Lane, Rules};
use crate::fanout::Fanout;
use crate::preferences;
use crate::store::RedisError;

/// Why a call failed, before it becomes a status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("alert store unavailable: {0}")]
    Redis(#[from] RedisError),
    #[error(transparent)]
    Kafka(#[from] ProduceError),
    #[error("{0}")]
    Status(Status),
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Invalid { field, reason } => Status::with_error_details(
                tonic::Code::InvalidArgument,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            ApiError::Redis(e) => Status::unavailable(format!("alert store unavailable: {e}")),
            ApiError::Kafka(e) => Status::unavailable(e.to_string()),
            ApiError::Status(s) => s,
        }
    }
}

/// An invalid field. A message of the form "field: reason" is split at the first ": ".
pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    let message = message.into();
    match message.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') => ApiError::Invalid {
            field: field.to_owned(),
            reason: reason.to_owned(),
        },
        _ => ApiError::Invalid {
            field: String::new(),
            reason: message,
        },
    }
}

/// `newsroom.v1.NotificationService`: the gRPC edge (validation, roles) in front of the fan-out
/// and the store; built by [`crate::run`] from its parts.
pub struct NotificationApi {
    /// The fan-out, and through it the store and the channels.
    pub fanout: Fanout,
    /// Writes devices and alert requests.
    pub producer: Producer,
    /// The `devices` topic (with the platform's prefix).
    pub devices_topic: String,
    /// The `notifications.alerts` topic: routine editor alerts (with the platform's prefix).
    pub routine_topic: String,
    /// The `notifications.alerts.breaking` topic: critical ones, and those of breaking stories.
    pub breaking_topic: String,
    pub auth: Auth,
    /// Segments, the canary's user, what is breaking.
    pub rules: Rules,
    /// Alerts opened and dismissed, fed back to the feed.
    pub feedback: crate::feedback::Feedback,
    /// Webhooks may point at private addresses (the SSRF guard lifted: demo, tests).
    pub webhook_allow_private: bool,
    /// Ends open `StreamAlerts` streams.
    pub shutdown: Shutdown,
    /// Caps on open `StreamAlerts` streams, per reader and for this replica.
    pub streams: crate::streams::StreamSlots,
}

impl NotificationApi {
    /// The registered device `device_id`, if the caller may act for its owner (`rpc` names
    /// the call for the audit log).
    async fn owned_device(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        device_id: &str,
        rpc: &'static str,
    ) -> Result<Device, Status> {
        let principal = self.auth.authenticate(metadata).await?;
        let id = device_id.trim();
        if id.is_empty() {
            return Err(invalid("device_id: required").into());
        }
        let Some(device) = self.fanout.store.device(id).await.map_err(ApiError::from)? else {
            return Err(Status::not_found(format!("device {id} is not registered")));
        };
        self.auth.owner(&principal, &device.user_id, rpc)?;
        Ok(device)
    }

    /// `SendAlert` of a story notification has not seen: sealed until its release when ingest
    /// holds it under embargo (see [`crate::sealed`]), else `NOT_FOUND`.
    async fn send_sealed(
        &self,
        by: &str,
        id: &str,
        req: SendAlertRequest,
    ) -> Result<Response<AlertStatus>, Status> {
        let held = self
            .fanout
            .store
            .held(id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| Status::not_found(format!("story {id} has not been enriched yet")))?;
        let until = newsroom_platform::time::timestamp_of_ms(held.until_ms);
        if req.dry_run {
            return Err(Status::failed_precondition(format!(
                "story {id} is under embargo until {until}: its audience is known at the release; \
                 a dry run can only be made after"
            )));
        }
        if req.expires_after.is_some() {
            return Err(invalid(
                "expires_after: not for a sealed alert; it is sent at the story's release",
            )
            .into());
        }
        // Only the urgency is known before the release (no breaking score yet).
        let lane = Lane::of(req.critical || (1..=self.rules.max_urgency).contains(&held.urgency));
        let requested_at: prost_types::Timestamp = SystemTime::now().into();
        let record = AlertRequest {
            story_id: id.to_owned(),
            audience: req.audience,
            critical: req.critical,
            requested_by: by.to_owned(),
            requested_at: Some(requested_at),
            expires_at: None,
            sealed_until: Some(until),
            retract: false,
        };
        self.producer
            .send(self.lane_topic(lane), id, &record.encode_to_vec())
            .await
            .map_err(ApiError::from)?;
        tracing::info!(story.id = %id, critical = req.critical, lane = lane.label(), by, sealed_until = %until, "editor alert sealed until the story's release");
        Ok(Response::new(AlertStatus {
            story_id: id.to_owned(),
            requested_at: Some(requested_at),
            sealed_until: Some(until),
            ..Default::default()
        }))
    }

    /// The request topic of `lane`.
    fn lane_topic(&self, lane: Lane) -> &str {
        match lane {
            Lane::Breaking => &self.breaking_topic,
            Lane::Routine => &self.routine_topic,
        }
    }

    /// Validates a device at the edge into one the core can trust.
    async fn validate_device(&self, device: Option<Device>) -> Result<Device, ApiError> {
        let mut d = device.ok_or_else(|| invalid("device: required"))?;
        d.device_id = d.device_id.trim().to_owned();
        d.user_id = d.user_id.trim().to_owned();
        d.address = d.address.trim().to_owned();
        d.timezone = d.timezone.trim().to_owned();
        d.language = d.language.trim().to_owned();
        for (field, v) in [
            ("device.device_id", &d.device_id),
            ("device.user_id", &d.user_id),
        ] {
            if v.is_empty() || v.len() > 128 || v.contains('|') || v.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "{field}: required, at most 128 bytes, no '|' or control characters"
                )));
            }
        }
        let kind = match ChannelKind::try_from(d.channel) {
            Ok(ChannelKind::Unspecified) | Err(_) => {
                return Err(invalid(
                    "device.channel: one of WEBHOOK, WEB_PUSH, APNS, FCM, IN_APP",
                ));
            }
            Ok(k) => k,
        };
        let channel = self.fanout.channels.get(d.channel).ok_or_else(|| {
            ApiError::Status(Status::failed_precondition(format!(
                "device.channel: {} is not configured on this server (configured: {})",
                kind.as_str_name(),
                self.fanout.channels.names().join(", ")
            )))
        })?;
        channel.check_device(&d).map_err(invalid)?;
        // A webhook is a URL a caller chose: it must lead to a public address now (and the
        // channel checks again at every connection).
        if kind == ChannelKind::Webhook && !self.webhook_allow_private {
            newsroom_platform::outbound::check_destination(&d.address, false)
                .await
                .map_err(|e| invalid(format!("device.address: {e}")))?;
        }
        if !d.timezone.is_empty() && !preferences::is_time_zone(&d.timezone) {
            return Err(invalid(format!(
                "device.timezone: {:?} is not an IANA time zone such as \"Europe/London\"",
                d.timezone
            )));
        }
        if !d.language.is_empty() {
            preferences::validate(
                Preferences {
                    language: d.language.clone(),
                    ..Default::default()
                },
                "device",
            )
            .map_err(invalid)?;
        }
        d.preferences = match d.preferences.take() {
            Some(p) => Some(preferences::validate(p, "device.preferences").map_err(invalid)?),
            // A new device of a reader who set preferences on another device gets them too.
            None => self.preferences_of_user(&d.user_id, &d.device_id).await?,
        };
        Ok(d)
    }

    async fn preferences_of_user(
        &self,
        user: &str,
        except: &str,
    ) -> Result<Option<Preferences>, ApiError> {
        let store = &self.fanout.store;
        let ids: Vec<String> = store
            .user_devices(user)
            .await?
            .into_iter()
            .filter(|d| d != except)
            .collect();
        Ok(store
            .devices(&ids)
            .await?
            .into_iter()
            .flatten()
            .find_map(|d| d.preferences))
    }

    /// Kafka first (the record of truth), then Redis as of that record.
    async fn write_device(&self, device: &Device) -> Result<(), ApiError> {
        let at = self
            .producer
            .send(
                &self.devices_topic,
                &device.device_id,
                &device.encode_to_vec(),
            )
            .await?;
        self.fanout.store.put_device(device, at.offset).await?;
        Ok(())
    }

    fn audience(&self, audience: Option<newsroom_proto::v1::Audience>) -> Result<(), ApiError> {
        match audience.and_then(|a| a.target) {
            None | Some(Target::Everyone(true)) | Some(Target::Followers(true)) => Ok(()),
            Some(Target::Segment(name)) if self.rules.segments.contains_key(&name) => Ok(()),
            Some(Target::Segment(name)) => Err(invalid(format!(
                "audience.segment: unknown segment {name:?}; configured: [{}]",
                self.rules
                    .segments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            Some(_) => Err(invalid(
                "audience: set everyone or followers to true, or name a segment",
            )),
        }
    }

    async fn status_or_empty(&self, story: &str, version: u32) -> Result<AlertStatus, ApiError> {
        Ok(self.fanout.status(story).await?.unwrap_or(AlertStatus {
            story_id: story.to_owned(),
            version,
            ..Default::default()
        }))
    }
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<Alert, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn register_device(
        &self,
        request: Request<RegisterDeviceRequest>,
    ) -> Result<Response<Device>, Status> {
        let (metadata, _, mut req) = request.into_parts();
        let principal = self.auth.authenticate(&metadata).await?;
        if let Some(d) = req.device.as_mut() {
            d.user_id = self
                .auth
                .reader_for(principal.clone(), &d.user_id, "RegisterDevice")?;
        }
        let device = self.validate_device(req.device).await?;
        // A device id is its owner's: a reader cannot take over another reader's device.
        let store = &self.fanout.store;
        let existing = store
            .device(&device.device_id)
            .await
            .map_err(ApiError::from)?;
        if let Some(existing) = existing.filter(|e| e.user_id != device.user_id) {
            self.auth
                .owner(&principal, &existing.user_id, "RegisterDevice")?;
        }
        self.write_device(&device).await?;
        tracing::info!(
            device.id = %device.device_id, user.id = %device.user_id,
            channel = crate::channel::name_of(ChannelKind::try_from(device.channel).unwrap_or_default()),
            "device registered"
        );
        Ok(Response::new(device))
    }

    async fn get_device(
        &self,
        request: Request<GetDeviceRequest>,
    ) -> Result<Response<Device>, Status> {
        let (metadata, _, req) = request.into_parts();
        let device = self
            .owned_device(&metadata, &req.device_id, "GetDevice")
            .await?;
        Ok(Response::new(device))
    }

    async fn unregister_device(
        &self,
        request: Request<UnregisterDeviceRequest>,
    ) -> Result<Response<UnregisterDeviceResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let device = self
            .owned_device(&metadata, &req.device_id, "UnregisterDevice")
            .await?;
        let id = device.device_id;
        let store = &self.fanout.store;
        let at = self
            .producer
            .send_tombstone(&self.devices_topic, &id)
            .await
            .map_err(ApiError::from)?;
        store
            .remove_device(&id, at.offset)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(device.id = %id, "device unregistered");
        Ok(Response::new(UnregisterDeviceResponse {}))
    }

    async fn update_preferences(
        &self,
        request: Request<UpdatePreferencesRequest>,
    ) -> Result<Response<Preferences>, Status> {
        let req = self
            .auth
            .reader_request(request, "UpdatePreferences", |r| &mut r.user_id)
            .await?;
        let user = req.user_id.trim();
        if user.is_empty() {
            return Err(invalid("user_id: required").into());
        }
        let update = req
            .preferences
            .ok_or_else(|| invalid("preferences: required"))?;
        let store = &self.fanout.store;
        let ids = match req.device_id.trim() {
            "" => store.user_devices(user).await.map_err(ApiError::from)?,
            one => vec![one.to_owned()],
        };
        let devices: Vec<Device> = store
            .devices(&ids)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .flatten()
            .filter(|d| d.user_id == user)
            .collect();
        if devices.is_empty() {
            return Err(if req.device_id.trim().is_empty() {
                Status::failed_precondition(format!(
                    "user {user} has no registered device; preferences live with devices, register one first"
                ))
            } else {
                Status::not_found(format!(
                    "user {user} has no device {}",
                    req.device_id.trim()
                ))
            });
        }
        let mut result = None;
        for mut device in devices {
            let merged = preferences::merge(
                device.preferences.as_ref(),
                &update,
                req.update_mask.as_ref(),
            )
            .map_err(invalid)?;
            let merged = preferences::validate(merged, "preferences").map_err(invalid)?;
            device.preferences = Some(merged.clone());
            self.write_device(&device).await?;
            result.get_or_insert(merged);
        }
        tracing::info!(user.id = %user, "preferences updated");
        Ok(Response::new(result.unwrap_or_default()))
    }

    async fn send_alert(
        &self,
        request: Request<SendAlertRequest>,
    ) -> Result<Response<AlertStatus>, Status> {
        let caller = self
            .auth
            .require(request.metadata(), &[Role::Editor])
            .await?;
        let caller = caller.label();
        let req = request.into_inner();
        let id = req.story_id.trim();
        if id.is_empty() {
            return Err(invalid("story_id: required").into());
        }
        self.audience(req.audience.clone())?;
        let store = &self.fanout.store;
        if store.is_killed(id).await.map_err(ApiError::from)? {
            return Err(Status::failed_precondition(format!(
                "story {id} was killed; it is never alerted"
            )));
        }
        let Some(story) = store.story(id).await.map_err(ApiError::from)? else {
            let id = id.to_owned();
            return self.send_sealed(&caller, &id, req).await;
        };
        if !decision::is_usable(&story) {
            return Err(Status::failed_precondition(format!(
                "story {id} is withheld; it cannot alert"
            )));
        }
        let requested_at: prost_types::Timestamp = SystemTime::now().into();
        let record = AlertRequest {
            story_id: id.to_owned(),
            audience: req.audience,
            critical: req.critical,
            requested_by: caller.clone(),
            requested_at: Some(requested_at),
            expires_at: match req.expires_after {
                None => None,
                Some(d) => {
                    let d = std::time::Duration::try_from(d)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| invalid("expires_after: a positive duration"))?;
                    Some((SystemTime::now() + d).into())
                }
            },
            sealed_until: None,
            retract: false,
        };
        if req.dry_run {
            // The decision the consumer would make, run here; nothing is published or sent.
            let job = crate::editor_job(&story, &record, &self.rules)
                .map_err(Status::failed_precondition)?;
            let status = self.fanout.dry_run(&job).await.map_err(ApiError::from)?;
            tracing::info!(story.id = %id, by = %caller, targeted = status.targeted, would_send = status.sent, "editor alert dry run");
            return Ok(Response::new(status));
        }
        // A flash goes to the breaking lane, never behind a routine fan-out.
        let lane = self.rules.editor_lane(&story, req.critical);
        self.producer
            .send(self.lane_topic(lane), id, &record.encode_to_vec())
            .await
            .map_err(ApiError::from)?;
        tracing::info!(story.id = %id, critical = req.critical, lane = lane.label(), by = %caller, "editor alert requested");
        let version = story.story.map_or(0, |s| s.version);
        let mut status = self.status_or_empty(id, version).await?;
        status.requested_at = Some(requested_at);
        Ok(Response::new(status))
    }

    async fn retract_alert(
        &self,
        request: Request<RetractAlertRequest>,
    ) -> Result<Response<AlertStatus>, Status> {
        let caller = self
            .auth
            .require(request.metadata(), &[Role::Editor])
            .await?
            .label();
        let id = request.into_inner().story_id.trim().to_owned();
        if id.is_empty() {
            return Err(invalid("story_id: required").into());
        }
        let store = &self.fanout.store;
        let status = self.fanout.status(&id).await.map_err(ApiError::from)?;
        if status.as_ref().is_none_or(|s| s.version == 0) {
            return Err(Status::failed_precondition(format!(
                "story {id} has sent no alert; there is nothing to withdraw"
            )));
        }
        if store.is_killed(&id).await.map_err(ApiError::from)? {
            // Killing it withdrew the alert already.
            return Ok(Response::new(status.unwrap_or_default()));
        }
        let record = AlertRequest {
            story_id: id.clone(),
            requested_by: caller.clone(),
            requested_at: Some(SystemTime::now().into()),
            retract: true,
            ..Default::default()
        };
        // Through the breaking lane, in order after the alert it withdraws.
        self.producer
            .send(
                self.lane_topic(Lane::Breaking),
                &id,
                &record.encode_to_vec(),
            )
            .await
            .map_err(ApiError::from)?;
        tracing::info!(story.id = %id, by = %caller, "alert retraction requested");
        Ok(Response::new(status.unwrap_or_default()))
    }

    async fn get_alert(
        &self,
        request: Request<GetAlertRequest>,
    ) -> Result<Response<AlertStatus>, Status> {
        self.auth
            .require(
                request.metadata(),
                &[Role::Editor, Role::Service, Role::Operator],
            )
            .await?;
        let id = request.into_inner().story_id;
        let id = id.trim();
        if id.is_empty() {
            return Err(invalid("story_id: required").into());
        }
        match self.fanout.status(id).await.map_err(ApiError::from)? {
            Some(s) => Ok(Response::new(s)),
            None => Err(Status::not_found(format!("story {id} has not alerted"))),
        }
    }

    async fn acknowledge_alert(
        &self,
        request: Request<AcknowledgeAlertRequest>,
    ) -> Result<Response<AcknowledgeAlertResponse>, Status> {
        let principal = self.auth.authenticate(request.metadata()).await?;
        let first = self
            .feedback
            .acknowledge(request.get_ref(), |owner| {
                self.auth.owner(&principal, owner, "AcknowledgeAlert")
            })
            .await?;
        Ok(Response::new(AcknowledgeAlertResponse { first }))
    }

    type StreamAlertsStream = AlertStream;

    async fn stream_alerts(
        &self,
        request: Request<StreamAlertsRequest>,
    ) -> Result<Response<Self::StreamAlertsStream>, Status> {
        let req = self
            .auth
            .reader_request(request, "StreamAlerts", |r| &mut r.user_id)
            .await?;
        let user = req.user_id.trim().to_owned();
        if user.is_empty() {
            return Err(invalid("user_id: required").into());
        }
        // Past a cap, RESOURCE_EXHAUSTED before any Redis connection is taken.
        let slot = self.streams.take(&user)?;
        let rx = crate::streams::open(
            self.fanout.store.redis().clone(),
            self.shutdown.clone(),
            &user,
            req.since,
            slot,
        )
        .await
        .map_err(Status::from)?;
        tracing::info!(user.id = %user, "in-app stream opened");
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
